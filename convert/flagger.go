package convert

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// flaggerCanary converts a Flagger Canary into the AnalysisTemplates of its metrics and a
// Rollout releasing its target Deployment in place.
func (c *converter) flaggerCanary(obj map[string]any) []Object {
	src := newSource(obj)
	from := describe(obj)
	src.get("apiVersion")
	src.get("kind")
	md := metadata(src)
	refuse := func(format string, args ...any) []Object {
		src.say(format, args...)
		return []Object{{From: from, Notes: src.notes}}
	}
	if k := src.str("spec", "targetRef", "kind"); k != "Deployment" {
		return refuse("spec.targetRef.kind %q: promgate releases a Deployment in place, and converts Canaries of Deployments; refused", k)
	}
	src.get("spec", "targetRef", "apiVersion")
	target := src.str("spec", "targetRef", "name")
	provider := src.str("spec", "provider")
	if provider == "" {
		provider = c.opts.Provider
		src.say("spec.provider is unset: taken to be %q (--provider)", provider)
	}
	if !slices.Contains(providers, provider) {
		return refuse("spec.provider %q: promgate converts the providers %s; refused", provider, strings.Join(providers, ", "))
	}
	service := src.str("spec", "service", "name")
	if service == "" {
		service = target
	}
	for _, k := range src.keysAt("spec", "service") {
		src.note("Flagger generated the Services and routes from it; promgate generates none but "+service+traffic.CanarySuffix+": keep the Service "+service+" selecting the Deployment's pods, and the route in front of it", "spec", "service", k)
	}

	a := []any{"spec", "analysis"}
	interval := 60 * time.Second
	if s := src.str(append(a, "interval")...); s != "" {
		d, err := argoDuration(s)
		if err != nil {
			return refuse("spec.analysis.interval: %v; refused", err)
		}
		interval = d
	}
	threshold := int64(1)
	if n, ok := src.num(append(a, "threshold")...); ok && n > 0 {
		threshold = n
	}

	var out []Object
	bg := &v1alpha1.BackgroundAnalysis{}
	for i := range src.list(append(a, "metrics")...) {
		mk := append(a, "metrics", i)
		t, args, ok := c.flaggerMetric(src, mk, md, provider, service, target, interval, threshold)
		if !ok {
			continue
		}
		out = append(out, output(from+" (its metric "+t.Spec.Metrics[0].Name+")", newSource(nil), t))
		bg.Templates = append(bg.Templates, v1alpha1.RolloutAnalysisTemplate{TemplateName: t.Name})
		for _, arg := range args {
			if !slices.ContainsFunc(bg.Args, func(x v1alpha1.AnalysisRunArgument) bool { return x.Name == arg.Name }) {
				bg.Args = append(bg.Args, arg)
			}
		}
	}
	if len(bg.Templates) > 0 {
		src.say("spec.analysis.metrics: Flagger fails a check without data; promgate counts no data as Inconclusive (noData), so a release neither goes on nor fails on it")
	}
	if threshold > 1 {
		src.say("spec.analysis.threshold %d: each metric tolerates %d failed measurements (failureLimit), and the next fails the release", threshold, threshold-1)
	}

	ro := &v1alpha1.Rollout{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "Rollout"}, ObjectMeta: md}
	ro.Spec.WorkloadRef = v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: target}
	if len(bg.Templates) > 0 {
		ro.Spec.Analysis = bg
	}
	routing := c.flaggerRouting(src, provider, service, target)
	matches := flaggerMatches(src, append(a, "match"))
	if len(matches) > 0 && (routing == nil || routing.Ingress == nil && routing.Istio == nil && routing.Gateway == nil) {
		src.say("spec.analysis.match: provider %s has no header routing in promgate: the matches are left out", provider)
		matches = nil
	}
	wait := &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: interval}}
	weights, err := flaggerWeights(src, a)
	if err != nil {
		return refuse("%v; refused", err)
	}
	iterations, hasIterations := src.num(append(a, "iterations")...)
	st := &v1alpha1.ReleaseStrategy{}
	if routing != nil {
		st.TrafficRoutings = []v1alpha1.TrafficRouting{*routing}
	}
	switch {
	case hasIterations && iterations > 0:
		// Blue/green, or A/B testing with matches: the new version at full size, held for
		// the iterations, then all traffic.
		hold := &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: time.Duration(iterations) * interval}}
		first := v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("0%"), Matches: matches, Pause: hold}
		st.Steps = []v1alpha1.RolloutStep{first, {Traffic: ptr.To("100%")}}
		if len(matches) > 0 {
			ro.Spec.Strategy.Canary = st
		} else {
			ro.Spec.Strategy.BlueGreen = st
		}
		if len(weights) > 0 {
			src.say("spec.analysis.stepWeight(s): Flagger ignores weights when iterations are set, and so does the conversion")
		}
	case len(weights) > 0:
		weighted := routing != nil && (routing.Ingress != nil || routing.Istio != nil || routing.Gateway != nil)
		if !weighted && routing != nil {
			// A Service alone switches 0% or 100%: the weights are the new pods' share.
			src.say("provider %s: promgate has no weighted router for it: each step's weight is the share of new pods, and traffic follows the replicas", provider)
		}
		if !weighted {
			st.TrafficRoutings = nil
		}
		for _, w := range weights {
			s := v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString(fmt.Sprintf("%d%%", w))), Pause: wait}
			if weighted {
				s.Traffic = ptr.To(fmt.Sprintf("%d%%", w))
				s.Matches = matches
			}
			st.Steps = append(st.Steps, s)
		}
		if len(st.Steps) > 20 {
			src.say("spec.analysis: %d steps, more than the 20 a Rollout holds: the last %d are left out", len(st.Steps), len(st.Steps)-20)
			st.Steps = st.Steps[:20]
		}
		ro.Spec.Strategy.Canary = st
	default:
		return refuse("spec.analysis has neither stepWeight(s) nor iterations: nothing to release by; refused")
	}

	src.note("the HPA stays on the Deployment, and promgate holds it during a release: delete the "+target+"-primary HPA Flagger made", "spec", "autoscalerRef")
	src.note("promgate releases the Deployment in place: the Ingress is routed through trafficRoutings", "spec", "ingressRef")
	src.note("promgate analyses every release", "spec", "skipAnalysis")
	src.note("the Deployment's own progressDeadlineSeconds applies", "spec", "progressDeadlineSeconds")
	src.note("promgate restores the Deployment when the Rollout is deleted", "spec", "revertOnDeletion")
	src.note("promgate has no such field", "spec", "suspend")
	src.note("promgate has no primary copy to promote", append(a, "stepWeightPromotion")...)
	src.note("promgate has no mirroring", append(a, "mirror")...)
	src.note("promgate has no mirroring", append(a, "mirrorWeight")...)
	src.note("promgate has no session affinity of its own", append(a, "sessionAffinity")...)
	src.note("promgate has no primary copy to scale", append(a, "primaryReadyThreshold")...)
	src.note("promgate has no primary copy to scale", append(a, "canaryReadyThreshold")...)
	src.note("alerts come from Alertmanager to promgate (spec.abortOn), and reports go to spec.notify", append(a, "alerts")...)
	for i := range src.list(append(a, "webhooks")...) {
		wk := append(a, "webhooks", i)
		typ := src.str(append(wk, "type")...)
		if typ == "" || typ == "rollout" {
			src.note("a load test or a check run by Flagger's webhooks is not carried over: run it as a job metric (a Kubernetes Job the analysis waits for) or beside the release", wk...)
			continue
		}
		src.note("promgate has no "+typ+" webhook: gate the release with a pause and a human (kubectl promgate approve), or a job metric", wk...)
	}
	src.leftovers(leftoverWhy)
	return append(out, output(from, src, ro))
}

// flaggerWeights are the canary weights: stepWeights as written, or stepWeight up to
// maxWeight (default 50), then 100.
func flaggerWeights(src *source, a []any) ([]int64, error) {
	var ws []int64
	for i := range src.list(append(a, "stepWeights")...) {
		w, ok := src.num(append(a, "stepWeights", i)...)
		if !ok || w < 0 || w > 100 {
			return nil, fmt.Errorf("spec.analysis.stepWeights[%d] is not a weight from 0 to 100", i)
		}
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		step, ok := src.num(append(a, "stepWeight")...)
		if !ok {
			return nil, nil
		}
		if step <= 0 || step > 100 {
			return nil, fmt.Errorf("spec.analysis.stepWeight %d is not a weight from 1 to 100", step)
		}
		maxWeight := int64(50)
		if m, ok := src.num(append(a, "maxWeight")...); ok {
			maxWeight = m
		}
		for w := step; w <= maxWeight && w < 100; w += step {
			ws = append(ws, w)
		}
	}
	// Flagger promotes after the last weight: all traffic to the new version.
	if len(ws) == 0 || ws[len(ws)-1] != 100 {
		ws = append(ws, 100)
	}
	return ws, nil
}

// flaggerRouting is the traffic routing of provider; nil where promgate has no router for
// it (traffic then follows the replicas).
func (c *converter) flaggerRouting(src *source, provider, service, target string) *v1alpha1.TrafficRouting {
	r := &v1alpha1.TrafficRouting{Service: service}
	switch provider {
	case "istio":
		r.Istio = &v1alpha1.IstioTrafficRouting{VirtualService: v1alpha1.IstioVirtualService{Name: service}}
		src.say("provider istio: Flagger generated the VirtualService %q; promgate weights one you keep: create it with a route to the Service %q (or keep Flagger's, less its -primary destination)", service, service)
	case "nginx":
		ing := src.str("spec", "ingressRef", "name")
		if ing == "" {
			ing = target
		}
		r.Ingress = &v1alpha1.IngressTrafficRouting{Name: ing}
		src.get("spec", "ingressRef", "apiVersion")
		src.get("spec", "ingressRef", "kind")
	case "gatewayapi", "contour":
		r.Gateway = &v1alpha1.GatewayTrafficRouting{HTTPRouteName: service}
		src.say("provider %s: Flagger generated the route %q; promgate weights a Gateway API HTTPRoute you keep (Contour serves them too): create it with a backendRef to the Service %q", provider, service, service)
	case "kubernetes":
		// Blue/green by the Service's selector alone.
	default:
		src.say("provider %s: promgate has no router for it: traffic follows the replicas", provider)
		return nil
	}
	return r
}

// flaggerMatches reads Flagger's match: headers with exact, regex or prefix values.
func flaggerMatches(src *source, keys []any) []v1alpha1.HTTPRouteMatch {
	var out []v1alpha1.HTTPRouteMatch
	for i := range src.list(keys...) {
		m := append(keys, i)
		var hm v1alpha1.HTTPRouteMatch
		for _, name := range src.keysAt(append(m, "headers")...) {
			hk := append(m, "headers", name)
			h := v1alpha1.HeaderMatch{Name: name, Type: "Exact"}
			switch {
			case src.has(append(hk, "exact")...):
				h.Value = src.str(append(hk, "exact")...)
			case src.has(append(hk, "regex")...):
				h.Type, h.Value = "RegularExpression", src.str(append(hk, "regex")...)
			case src.has(append(hk, "prefix")...):
				h.Type, h.Value = "RegularExpression", regexp.QuoteMeta(src.str(append(hk, "prefix")...))+".*"
			default:
				src.note("promgate matches headers by exact value or regular expression", hk...)
				continue
			}
			hm.Headers = append(hm.Headers, h)
		}
		for _, k := range src.keysAt(m...) {
			if k != "headers" {
				src.note("promgate matches requests by header only", append(m, k)...)
			}
		}
		if len(hm.Headers) > 0 {
			out = append(out, hm)
		}
	}
	return out
}

// flaggerMetric is the AnalysisTemplate of the i-th metric of a Canary, and the args the
// Rollout gives it; ok is false when the metric is not carried over (its note says why).
func (c *converter) flaggerMetric(src *source, mk []any, md metav1.ObjectMeta, provider, service, target string, interval time.Duration, threshold int64) (*v1alpha1.AnalysisTemplate, []v1alpha1.AnalysisRunArgument, bool) {
	name := src.str(append(mk, "name")...)
	every := interval
	if s := src.str(append(mk, "interval")...); s != "" {
		if d, err := argoDuration(s); err == nil {
			every = d
		} else {
			src.say("%s: %v; the analysis interval is used", pathString(append(mk, "interval")), err)
		}
	}
	metric := v1alpha1.Metric{
		Name:         name,
		Interval:     v1alpha1.DurationString(promDuration(every)),
		FailureLimit: ptr.To(intstr.FromInt32(int32(threshold - 1))),
	}
	var conds []string
	if v := src.str(append(mk, "thresholdRange", "min")...); v != "" {
		conds = append(conds, "result[0] >= "+v)
	}
	if v := src.str(append(mk, "thresholdRange", "max")...); v != "" {
		conds = append(conds, "result[0] <= "+v)
	}
	metric.SuccessCondition = strings.Join(conds, " && ")
	t := &v1alpha1.AnalysisTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion, Kind: "AnalysisTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: md.Name + "-" + name, Namespace: md.Namespace},
	}
	var args []v1alpha1.AnalysisRunArgument
	prom := &v1alpha1.PrometheusMetric{}
	switch {
	case src.has(append(mk, "templateRef")...):
		ref := append(mk, "templateRef")
		ns := src.str(append(ref, "namespace")...)
		if ns == "" {
			ns = md.Namespace
		}
		key := ns + "/" + src.str(append(ref, "name")...)
		mt, found := c.metricTemplates[key]
		if !found {
			src.say("%s: MetricTemplate %s is not in the input: convert it with the Canary; the metric is left out", pathString(ref), key)
			return nil, nil, false
		}
		c.usedMetricTemplates[key] = true
		values := map[string]string{"namespace": md.Namespace, "target": target, "service": service, "interval": promDuration(every), "ingress": target}
		if ing := src.str("spec", "ingressRef", "name"); ing != "" {
			values["ingress"] = ing
		}
		for _, vn := range src.keysAt(append(mk, "templateVariables")...) {
			values[vn] = src.str(append(mk, "templateVariables", vn)...)
		}
		q, addr, vars, ok := c.metricTemplateQuery(src, mk, mt, values)
		if !ok {
			return nil, nil, false
		}
		prom.Query, prom.Address = q, addr
		for _, v := range vars {
			t.Spec.Args = append(t.Spec.Args, v1alpha1.Argument{Name: v})
			src.say("%s: the MetricTemplate's variable %s has no value in the Canary: the template leaves arg %s to its runs", pathString(mk), v, v)
		}
	case src.has(append(mk, "query")...):
		prom.Query = src.str(append(mk, "query")...)
	case name == "request-success-rate" || name == "request-duration":
		q, ok := builtinQuery(name, provider, promDuration(every))
		if !ok {
			src.say("%s: provider %s has no built-in %s in promgate; the metric is left out", pathString(mk), provider, name)
			return nil, nil, false
		}
		prom.Query = q
		t.Spec.Args = []v1alpha1.Argument{{Name: "namespace"}, {Name: "service"}, {Name: "canary-hash"}}
	default:
		src.say("%s: %q is not a built-in metric and has neither templateRef nor query; the metric is left out", pathString(mk), name)
		return nil, nil, false
	}
	if metric.SuccessCondition == "" {
		src.say("%s: no thresholdRange: every measurement of %s is Successful", pathString(mk), name)
	}
	metric.Provider.Prometheus = prom
	t.Spec.Metrics = []v1alpha1.Metric{metric}
	return t, args, true
}

// promDuration writes d as PromQL does: 1m, 30s, 1m30s.
func promDuration(d time.Duration) string {
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	s = strings.Replace(s, "h0m", "h", 1)
	return s
}

// flaggerVar is a Go template variable of Flagger's queries.
var flaggerVar = regexp.MustCompile(`\{\{\s*\.?(namespace|target|interval|service|ingress|variables\.([A-Za-z0-9_]+))\s*\}\}`)

// metricTemplateQuery is the MetricTemplate's query with Flagger's variables replaced by
// values (the Canary's namespace, target, interval...), those without one by args; its
// address; and the args left.
func (c *converter) metricTemplateQuery(src *source, mk []any, mt map[string]any, values map[string]string) (query, address string, vars []string, ok bool) {
	ms := newSource(mt)
	if typ := ms.str("spec", "provider", "type"); typ != "prometheus" {
		src.say("%s: MetricTemplate provider %q: promgate queries Prometheus-compatible endpoints; the metric is left out", pathString(append(mk, "templateRef")), typ)
		return "", "", nil, false
	}
	seen := map[string]bool{}
	query = flaggerVar.ReplaceAllStringFunc(ms.str("spec", "query"), func(m string) string {
		sub := flaggerVar.FindStringSubmatch(m)
		name := sub[1]
		if sub[2] != "" {
			name = sub[2]
		}
		if v, ok := values[name]; ok {
			return v
		}
		if !seen[name] {
			seen[name] = true
			vars = append(vars, name)
		}
		return "{{args." + name + "}}"
	})
	if ms.has("spec", "provider", "secretRef") {
		src.say("%s: the MetricTemplate's spec.provider.secretRef: give the credentials with auth (bearerTokenSecret, basicAuth.passwordSecret) from the Secret", pathString(append(mk, "templateRef")))
	}
	if ms.boolean(false, "spec", "provider", "insecureSkipVerify") {
		src.say("%s: the MetricTemplate's spec.provider.insecureSkipVerify: set insecure: true on the template if the endpoint's certificate cannot be checked", pathString(append(mk, "templateRef")))
	}
	return query, ms.str("spec", "provider", "address"), vars, true
}

// metricTemplate converts a MetricTemplate no Canary of the input used into an
// AnalysisTemplate without conditions.
func (c *converter) metricTemplate(obj map[string]any) Object {
	src := newSource(obj)
	from := describe(obj)
	src.get("apiVersion")
	src.get("kind")
	md := metadata(src)
	src.get("spec")
	if typ := src.str("spec", "provider", "type"); typ != "prometheus" {
		src.say("spec.provider.type %q: promgate queries Prometheus-compatible endpoints; refused", typ)
		return Object{From: from, Notes: src.notes}
	}
	q, addr, vars, _ := c.metricTemplateQuery(newSource(map[string]any{}), nil, obj, nil)
	t := &v1alpha1.AnalysisTemplate{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AnalysisTemplate"}, ObjectMeta: md}
	for _, v := range vars {
		t.Spec.Args = append(t.Spec.Args, v1alpha1.Argument{Name: v})
	}
	t.Spec.Metrics = []v1alpha1.Metric{{Name: md.Name, Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: q, Address: addr}}}}
	src.say("no Canary of the input uses it: the template has no conditions (a Canary's thresholdRange gives them); add a successCondition")
	if src.has("spec", "provider", "secretRef") {
		src.say("spec.provider.secretRef: give the credentials with auth (bearerTokenSecret, basicAuth.passwordSecret) from the Secret")
	}
	return output(from, src, t)
}
