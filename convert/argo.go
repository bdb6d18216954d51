package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	sjson "sigs.k8s.io/json"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

const (
	apiVersion    = "promgate.io/v1alpha1"
	lastApplied   = "kubectl.kubernetes.io/last-applied-configuration"
	leftoverWhy   = "promgate has no such field"
	statusWhy     = "status is written by the controller"
	serverSetWhy  = "set by the API server"
	gatewayPlugin = "argoproj-labs/gatewayAPI"
)

// metadata carries name, namespace, labels and annotations over; what the API server set
// is noted as such.
func metadata(src *source) metav1.ObjectMeta {
	md := metav1.ObjectMeta{Name: src.str("metadata", "name"), Namespace: src.str("metadata", "namespace")}
	for _, k := range src.keysAt("metadata", "labels") {
		if md.Labels == nil {
			md.Labels = map[string]string{}
		}
		md.Labels[k] = src.str("metadata", "labels", k)
	}
	for _, k := range src.keysAt("metadata", "annotations") {
		if k == lastApplied {
			src.note("kubectl's record of the input object, not of this one", "metadata", "annotations", k)
			continue
		}
		if md.Annotations == nil {
			md.Annotations = map[string]string{}
		}
		md.Annotations[k] = src.str("metadata", "annotations", k)
	}
	for _, k := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"} {
		if src.has("metadata", k) {
			src.get("metadata", k)
		}
	}
	src.note("the objects promgate owns are its own; the Rollout owns its runs", "metadata", "ownerReferences")
	src.note("finalizers belong to the controller that set them", "metadata", "finalizers")
	src.note(statusWhy, "status")
	return md
}

// strictSpec decodes the value at keys into out, first removing, with a note each, the
// fields promgate does not have.
func strictSpec(src *source, out any, keys ...any) error {
	v, _ := src.get(keys...)
	for range 64 {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		strict, err := sjson.UnmarshalStrict(b, out)
		if err != nil {
			return err
		}
		if len(strict) == 0 {
			return nil
		}
		removed := false
		for _, e := range strict {
			var fe sjson.FieldError
			if !errors.As(e, &fe) {
				return e
			}
			p := fieldErrorPath(fe.Error())
			if p == "" {
				return e
			}
			if val, ok := removeAt(v, p); ok {
				src.notes = append(src.notes, fmt.Sprintf("%s.%s: %s: %s", pathString(keys), p, shown(val), leftoverWhy))
				removed = true
			}
		}
		if !removed {
			return errors.Join(strict...)
		}
	}
	return errors.New("too many unknown fields")
}

var unknownField = regexp.MustCompile(`(?:unknown|duplicate) field "([^"]+)"`)

func fieldErrorPath(msg string) string {
	m := unknownField.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return m[1]
}

var pathPart = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// removeAt deletes the field at p (metrics[0].provider.foo) from v.
func removeAt(v any, p string) (any, bool) {
	parts := pathPart.FindAllStringSubmatch(p, -1)
	cur := v
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part[2] != "":
			l, ok := cur.([]any)
			n, _ := strconv.Atoi(part[2])
			if !ok || n >= len(l) {
				return nil, false
			}
			cur = l[n]
		default:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if last {
				val, ok := m[part[1]]
				delete(m, part[1])
				return val, ok
			}
			cur = m[part[1]]
		}
	}
	return nil, false
}

// argoAnalysis converts an Argo AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun:
// the fields are promgate's, so the spec is carried as it is, less the fields promgate
// lacks and the metrics whose provider it does not implement.
func (c *converter) argoAnalysis(obj map[string]any) Object {
	src := newSource(obj)
	from := describe(obj)
	src.get("apiVersion")
	kind := src.str("kind")
	md := metadata(src)
	var spec v1alpha1.AnalysisTemplateSpec
	var run v1alpha1.AnalysisRunSpec
	target := any(&spec)
	if kind == "AnalysisRun" {
		target = &run
	}
	if err := strictSpec(src, target, "spec"); err != nil {
		src.say("spec cannot be read as promgate's: %v; refused", err)
		return Object{From: from, Notes: src.notes}
	}
	metrics := &spec.Metrics
	if kind == "AnalysisRun" {
		metrics = &run.Metrics
	}
	*metrics = slices.DeleteFunc(*metrics, func(m v1alpha1.Metric) bool {
		for _, p := range analysis.CheckProvider(field.NewPath("spec", "metrics").Key(m.Name).Child("provider"), &m.Provider) {
			if p.Type == field.ErrorTypeForbidden && strings.Contains(p.Detail, "does not implement") {
				src.say("%s: the metric is left out: %s", p.Field, p.Detail)
				return true
			}
		}
		return false
	})
	if len(*metrics) == 0 && len(spec.Templates) == 0 {
		src.say("no metric is left that promgate can measure: refused")
		return Object{From: from, Notes: src.notes}
	}
	src.leftovers(leftoverWhy)
	switch kind {
	case "AnalysisRun":
		return output(from, src, &v1alpha1.AnalysisRun{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, ObjectMeta: md, Spec: run})
	case "ClusterAnalysisTemplate":
		md.Namespace = ""
		return output(from, src, &v1alpha1.ClusterAnalysisTemplate{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, ObjectMeta: md, Spec: spec})
	}
	return output(from, src, &v1alpha1.AnalysisTemplate{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, ObjectMeta: md, Spec: spec})
}

// argoSteps is the promgate steps being built from Argo's steps, and what Argo carries from
// one step to the next.
type argoSteps struct {
	src    *source
	router bool
	steps  []v1alpha1.RolloutStep
	// weight is the last setWeight; scale the setCanaryScale in force (nil: follow the
	// weight); matches the header route in force.
	weight  *int64
	scale   *intstr.IntOrString
	matches []v1alpha1.HTTPRouteMatch
	// index maps each Argo step to the promgate step it went into.
	index []int
}

func (a *argoSteps) current() *v1alpha1.RolloutStep {
	if len(a.steps) == 0 {
		a.steps = append(a.steps, v1alpha1.RolloutStep{})
	}
	return &a.steps[len(a.steps)-1]
}

// next starts a new promgate step carrying the replicas and matches in force.
func (a *argoSteps) next() *v1alpha1.RolloutStep {
	a.steps = append(a.steps, v1alpha1.RolloutStep{})
	s := &a.steps[len(a.steps)-1]
	a.apply(s)
	return s
}

// apply sets the replicas and matches in force on s.
func (a *argoSteps) apply(s *v1alpha1.RolloutStep) {
	switch {
	case a.scale != nil:
		s.Replicas = ptr.To(*a.scale)
	case a.weight != nil:
		s.Replicas = ptr.To(intstr.FromString(fmt.Sprintf("%d%%", *a.weight)))
	}
	if a.router {
		s.Matches = slices.Clone(a.matches)
	}
}

// fresh reports whether s has nothing after its traffic yet, so more can join it.
func fresh(s *v1alpha1.RolloutStep) bool { return s.Pause == nil && s.Analysis == nil }

// argoRollout converts an Argo Rollout into a Deployment, when it carries the pod
// template, and a promgate Rollout releasing it.
func (c *converter) argoRollout(obj map[string]any) []Object {
	src := newSource(obj)
	from := describe(obj)
	src.get("apiVersion")
	src.get("kind")
	md := metadata(src)
	var out []Object
	ro := &v1alpha1.Rollout{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "Rollout"}, ObjectMeta: md}
	ro.Spec.WorkloadRef = v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: md.Name}

	if src.has("spec", "template") {
		d, err := deployment(src, md)
		if err != nil {
			src.say("spec.template cannot be read as a pod template: %v; refused", err)
			return []Object{{From: from, Notes: src.notes}}
		}
		// The Deployment's notes are the Rollout's, printed with it.
		out = append(out, output(from+" (its pod template)", newSource(nil), d))
	} else {
		switch kind := src.str("spec", "workloadRef", "kind"); kind {
		case "Deployment":
			ro.Spec.WorkloadRef.Name = src.str("spec", "workloadRef", "name")
			src.get("spec", "workloadRef", "apiVersion")
		default:
			src.say("spec.workloadRef.kind %q: promgate releases a Deployment or StatefulSet it is given, and an Argo Rollout names a Deployment; refused", kind)
			return []Object{{From: from, Notes: src.notes}}
		}
		src.note("promgate releases the Deployment in place: it is never scaled down", "spec", "workloadRef", "scaleDown")
		src.note("the Deployment's own replicas count", "spec", "replicas")
		src.note("the Deployment's own selector selects its pods", "spec", "selector")
	}
	src.note("promgate releases revision after revision and keeps no history of its own", "spec", "revisionHistoryLimit")
	src.note("the Deployment's own minReadySeconds applies (promgate holds it only during a release)", "spec", "minReadySeconds")
	src.note("the Deployment's own progressDeadlineSeconds applies", "spec", "progressDeadlineSeconds")
	src.note("promgate does not abort on the progress deadline: a Failed or Error analysis, an alert or a human aborts", "spec", "progressDeadlineAbort")
	src.note("restart the Deployment with kubectl rollout restart", "spec", "restartAt")
	src.note("promgate has no rollback window: reverting the Deployment's template cancels a release", "spec", "rollbackWindow")
	src.note("promgate keeps no run history per Rollout: runs are deleted by their ttlSecondsAfterFinished", "spec", "analysis")
	if p, ok := src.get("spec", "paused"); ok && p == true {
		ro.Spec.Paused = true
	}

	switch {
	case src.has("spec", "strategy", "canary"):
		st, err := c.argoCanary(src, ro)
		if err != nil {
			src.say("%v; refused", err)
			return append(out, Object{From: from, Notes: src.notes})
		}
		ro.Spec.Strategy.Canary = st
	case src.has("spec", "strategy", "blueGreen"):
		ro.Spec.Strategy.BlueGreen = c.argoBlueGreen(src)
	default:
		src.say("spec.strategy has neither canary nor blueGreen; refused")
		return append(out, Object{From: from, Notes: src.notes})
	}
	src.leftovers(leftoverWhy)
	return append(out, output(from, src, ro))
}

// deployment is the Deployment of the Argo Rollout's pod template.
func deployment(src *source, md metav1.ObjectMeta) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{
		Name: md.Name, Namespace: md.Namespace, Labels: md.Labels,
	}}
	if n, ok := src.num("spec", "replicas"); ok {
		d.Spec.Replicas = ptr.To(int32(n))
	}
	for _, f := range []struct {
		key string
		dst any
	}{{"selector", &d.Spec.Selector}, {"template", &d.Spec.Template}} {
		v, _ := src.get("spec", f.key)
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, f.dst); err != nil {
			return nil, fmt.Errorf("spec.%s: %w", f.key, err)
		}
	}
	if n, ok := src.num("spec", "revisionHistoryLimit"); ok {
		d.Spec.RevisionHistoryLimit = ptr.To(int32(n))
	}
	if n, ok := src.num("spec", "minReadySeconds"); ok {
		d.Spec.MinReadySeconds = int32(n)
	}
	if n, ok := src.num("spec", "progressDeadlineSeconds"); ok {
		d.Spec.ProgressDeadlineSeconds = ptr.To(int32(n))
	}
	return d, nil
}

// argoCanary maps Argo's canary steps, Services, router and background analysis.
func (c *converter) argoCanary(src *source, ro *v1alpha1.Rollout) (*v1alpha1.ReleaseStrategy, error) {
	base := []any{"spec", "strategy", "canary"}
	at := func(keys ...any) []any { return append(slices.Clone(base), keys...) }
	st := &v1alpha1.ReleaseStrategy{}
	routing, err := c.argoRouting(src, at)
	if err != nil {
		return nil, err
	}
	if routing != nil {
		st.TrafficRoutings = []v1alpha1.TrafficRouting{*routing}
	}
	src.note("promgate surges the new version's pods by the step's replicas", at("maxSurge")...)
	src.note("promgate never takes stable pods away during a release", at("maxUnavailable")...)
	src.note("the old pods go when the release completes", at("scaleDownDelaySeconds")...)
	src.note("the old pods go when the release completes", at("scaleDownDelayRevisionLimit")...)
	src.note("the stable pods keep their number during a release", at("dynamicStableScale")...)
	if src.has(at("abortScaleDownDelaySeconds")...) {
		st.AbortScaleDown = true
		src.note("an abort scales the new version's pods away at once (abortScaleDown)", at("abortScaleDownDelaySeconds")...)
	}
	src.note("pods carry promgate.io/release and promgate.io/release-batch labels instead", at("canaryMetadata")...)
	src.note("pods carry promgate.io/release and promgate.io/release-batch labels instead", at("stableMetadata")...)
	src.note("promgate has no anti-affinity of its own", at("antiAffinity")...)
	src.note("promgate has no ping-pong Services", at("pingPong")...)
	src.note("promgate does not drain a replica set's pods on its own", at("minPodsPerReplicaSet")...)

	a := &argoSteps{src: src, router: routing != nil && (routing.Ingress != nil || routing.Gateway != nil || routing.Istio != nil)}
	n := src.list(at("steps")...)
	for i := range n {
		step := at("steps", i)
		switch {
		case src.has(append(step, "setWeight")...):
			w, ok := src.num(append(step, "setWeight")...)
			if !ok || w < 0 || w > 100 {
				return nil, fmt.Errorf("%s: %q is not a weight from 0 to 100", pathString(append(step, "setWeight")), src.str(append(step, "setWeight")...))
			}
			a.weight = &w
			s := a.next()
			if a.router {
				s.Traffic = ptr.To(fmt.Sprintf("%d%%", w))
			}
		case src.has(append(step, "pause")...):
			s := a.current()
			if !fresh(s) {
				s = a.next()
			}
			p, err := pause(src, append(step, "pause"))
			if err != nil {
				return nil, err
			}
			s.Pause = p
		case src.has(append(step, "analysis")...):
			s := a.current()
			if s.Analysis != nil || s.Pause != nil {
				s = a.next()
			}
			s.Analysis = rolloutAnalysis(src, append(step, "analysis"))
		case src.has(append(step, "setCanaryScale")...):
			cs := append(step, "setCanaryScale")
			switch {
			case src.has(append(cs, "replicas")...):
				r, _ := src.num(append(cs, "replicas")...)
				a.scale = ptr.To(intstr.FromInt32(int32(r)))
			case src.has(append(cs, "weight")...):
				w, _ := src.num(append(cs, "weight")...)
				a.scale = ptr.To(intstr.FromString(fmt.Sprintf("%d%%", w)))
			default:
				src.get(append(cs, "matchTrafficWeight")...)
				a.scale = nil
			}
			s := a.current()
			if !fresh(s) {
				s = a.next()
			}
			a.apply(s)
		case src.has(append(step, "setHeaderRoute")...):
			hr := append(step, "setHeaderRoute")
			src.get(append(hr, "name")...)
			a.matches = headerRoute(src, hr)
			if !a.router {
				src.say("%s: a header route needs a traffic router, and this Rollout has none: left out", pathString(hr))
			}
			s := a.current()
			if !fresh(s) {
				s = a.next()
			}
			a.apply(s)
		default:
			for _, k := range src.keysAt(step...) {
				src.note("promgate has no such step (experiments, mirror routes and step plugins are not carried over)", append(step, k)...)
			}
		}
		a.index = append(a.index, max(len(a.steps)-1, 0))
	}
	if len(a.steps) == 0 {
		// Argo promotes a canary without steps at once.
		s := v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("100%"))}
		if a.router {
			s.Traffic = ptr.To("100%")
		}
		a.steps = append(a.steps, s)
	}
	if len(a.steps) > 20 {
		src.say("spec.strategy.canary.steps: %d promgate steps, more than 20: the last %d are left out", len(a.steps), len(a.steps)-20)
		a.steps = a.steps[:20]
	}
	st.Steps = a.steps
	if src.has(at("analysis")...) {
		bg := &v1alpha1.BackgroundAnalysis{RolloutAnalysis: *rolloutAnalysis(src, at("analysis"))}
		if n, ok := src.num(at("analysis", "startingStep")...); ok {
			first := int32(1)
			if int(n) < len(a.index) {
				first = int32(a.index[n] + 1)
			} else if n > 0 {
				first = int32(len(a.steps))
			}
			bg.StartingStep = ptr.To(first)
		}
		ro.Spec.Analysis = bg
	}
	return st, nil
}

// argoRouting maps the canary's Services and traffic router.
func (c *converter) argoRouting(src *source, at func(...any) []any) (*v1alpha1.TrafficRouting, error) {
	stable, canary := src.str(at("stableService")...), src.str(at("canaryService")...)
	tr := at("trafficRouting")
	if !src.has(tr...) {
		if stable != "" || canary != "" {
			src.say("spec.strategy.canary.stableService/canaryService: with no traffic router, promgate leaves both revisions behind the Deployment's Services, and traffic follows the replicas, as Argo's weights do without a router")
		}
		return nil, nil
	}
	r := &v1alpha1.TrafficRouting{Service: stable}
	switch {
	case src.has(append(tr, "nginx")...):
		ing := src.str(append(tr, "nginx", "stableIngress")...)
		if ing == "" && src.list(append(tr, "nginx", "stableIngresses")...) > 0 {
			ing = src.str(append(tr, "nginx", "stableIngresses", 0)...)
			src.note("promgate routes one Ingress per traffic routing: add a routing for each further one", append(tr, "nginx", "stableIngresses")...)
		}
		r.Ingress = &v1alpha1.IngressTrafficRouting{Name: ing}
		for _, k := range src.keysAt(append(tr, "nginx")...) {
			src.note("promgate writes its own canary Ingress annotations", append(tr, "nginx", k)...)
		}
	case src.has(append(tr, "istio")...):
		is := append(tr, "istio")
		r.Istio = &v1alpha1.IstioTrafficRouting{}
		vs := append(is, "virtualService")
		if !src.has(vs...) && src.list(append(is, "virtualServices")...) > 0 {
			vs = append(is, "virtualServices", 0)
			if src.list(append(is, "virtualServices")...) > 1 {
				src.say("%s: promgate routes one VirtualService per traffic routing: only the first is carried over; add a routing for each further one", pathString(append(is, "virtualServices")))
			}
		}
		r.Istio.VirtualService.Name = src.str(append(vs, "name")...)
		for i := range src.list(append(vs, "routes")...) {
			r.Istio.VirtualService.Routes = append(r.Istio.VirtualService.Routes, src.str(append(vs, "routes", i)...))
		}
		src.note("promgate weights HTTP routes only", append(vs, "tlsRoutes")...)
		src.note("promgate weights HTTP routes only", append(vs, "tcpRoutes")...)
		if src.has(append(is, "destinationRule")...) {
			dr := append(is, "destinationRule")
			r.Istio.DestinationRule = &v1alpha1.IstioDestinationRule{
				Name:             src.str(append(dr, "name")...),
				StableSubsetName: src.str(append(dr, "stableSubsetName")...),
				CanarySubsetName: src.str(append(dr, "canarySubsetName")...),
			}
			if r.Service == "" {
				r.Service = rolloutName(src)
				src.say("spec.strategy.canary.stableService is unset: service is taken to be %q, the Rollout's name; set it to the Service the DestinationRule is for", r.Service)
			}
		}
	case src.has(append(tr, "plugins", gatewayPlugin)...):
		gp := append(tr, "plugins", gatewayPlugin)
		r.Gateway = &v1alpha1.GatewayTrafficRouting{HTTPRouteName: src.str(append(gp, "httpRoute")...)}
		if r.Gateway.HTTPRouteName == "" && src.list(append(gp, "httpRoutes")...) > 0 {
			r.Gateway.HTTPRouteName = src.str(append(gp, "httpRoutes", 0, "name")...)
			src.note("promgate routes one HTTPRoute per traffic routing: add a routing for each further one", append(gp, "httpRoutes")...)
		}
		src.note("the HTTPRoute is in the Rollout's namespace", append(gp, "namespace")...)
		for _, k := range src.keysAt(gp...) {
			src.note("promgate has no such field", append(gp, k)...)
		}
	default:
		for _, k := range src.keysAt(tr...) {
			src.note("promgate has no such traffic router (it routes Services, ingress-nginx, the Gateway API and Istio): traffic follows the replicas instead", append(tr, k)...)
		}
		if stable != "" || canary != "" {
			src.say("spec.strategy.canary.stableService/canaryService: with no traffic router promgate leaves both revisions behind the Services, and traffic follows the replicas")
		}
		return nil, nil
	}
	src.note("promgate manages the routes it weights itself", append(tr, "managedRoutes")...)
	if r.Service == "" {
		return nil, errors.New("spec.strategy.canary.stableService is required with a traffic router: it is the Service whose traffic moves")
	}
	if canary != "" && canary != r.Service+traffic.CanarySuffix {
		src.say("spec.strategy.canary.canaryService %q: promgate generates %q for the new version; the routes it weights point at that one, and %q is no longer used", canary, r.Service+traffic.CanarySuffix, canary)
	}
	return r, nil
}

// rolloutName is the input Rollout's name.
func rolloutName(src *source) string {
	v, _ := src.lookup("metadata", "name")
	s, _ := v.(string)
	return s
}

// pause reads Argo's pause: {} or {duration: 30s | 30}.
func pause(src *source, keys []any) (*v1alpha1.RolloutPause, error) {
	p := &v1alpha1.RolloutPause{}
	src.get(keys...)
	if !src.has(append(keys, "duration")...) {
		return p, nil
	}
	raw := src.str(append(keys, "duration")...)
	d, err := argoDuration(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathString(append(keys, "duration")), err)
	}
	p.Duration = &metav1.Duration{Duration: d}
	return p, nil
}

// argoDuration reads a bare number of seconds or a duration with a unit (s, m, h).
func argoDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a number of seconds nor a duration", s)
	}
	return d, nil
}

// rolloutAnalysis reads Argo's analysis of a step or of the background: templates and
// args.
func rolloutAnalysis(src *source, keys []any) *v1alpha1.RolloutAnalysis {
	a := &v1alpha1.RolloutAnalysis{}
	for i := range src.list(append(keys, "templates")...) {
		t := append(keys, "templates", i)
		a.Templates = append(a.Templates, v1alpha1.RolloutAnalysisTemplate{
			TemplateName: src.str(append(t, "templateName")...),
			ClusterScope: src.boolean(false, append(t, "clusterScope")...),
		})
	}
	for i := range src.list(append(keys, "args")...) {
		ak := append(keys, "args", i)
		arg := v1alpha1.AnalysisRunArgument{Name: src.str(append(ak, "name")...)}
		switch {
		case src.has(append(ak, "value")...):
			arg.Value = ptr.To(src.str(append(ak, "value")...))
		case src.has(append(ak, "valueFrom", "podTemplateHashValue")...):
			h := src.str(append(ak, "valueFrom", "podTemplateHashValue")...)
			if h == "Latest" {
				h = "Canary"
			}
			arg.ValueFrom = &v1alpha1.AnalysisRunArgumentValueFrom{PodTemplateHashValue: h}
		case src.has(append(ak, "valueFrom", "fieldRef")...):
			arg.ValueFrom = &v1alpha1.AnalysisRunArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: src.str(append(ak, "valueFrom", "fieldRef", "fieldPath")...)}}
		case src.has(append(ak, "valueFrom", "secretKeyRef")...):
			arg.ValueFrom = &v1alpha1.AnalysisRunArgumentValueFrom{SecretKeyRef: &v1alpha1.SecretKeySelector{
				Name: src.str(append(ak, "valueFrom", "secretKeyRef", "name")...),
				Key:  src.str(append(ak, "valueFrom", "secretKeyRef", "key")...),
			}}
		default:
			arg.Value = ptr.To("")
			src.say("%s: no value and no valueFrom promgate has: given an empty value", pathString(ak))
		}
		a.Args = append(a.Args, arg)
	}
	src.note("promgate keeps no run history per Rollout", append(keys, "analysisRunMetadata")...)
	src.note("dry run is set per template in promgate (dryRun)", append(keys, "dryRun")...)
	src.note("measurement retention is set per template in promgate (measurementRetention)", append(keys, "measurementRetention")...)
	return a
}

// headerRoute reads Argo's setHeaderRoute matches: exact, regex, or prefix (as a regular
// expression).
func headerRoute(src *source, keys []any) []v1alpha1.HTTPRouteMatch {
	var out []v1alpha1.HTTPRouteMatch
	for i := range src.list(append(keys, "match")...) {
		m := append(keys, "match", i)
		h := v1alpha1.HeaderMatch{Name: src.str(append(m, "headerName")...), Type: "Exact"}
		v := append(m, "headerValue")
		switch {
		case src.has(append(v, "exact")...):
			h.Value = src.str(append(v, "exact")...)
		case src.has(append(v, "regex")...):
			h.Type, h.Value = "RegularExpression", src.str(append(v, "regex")...)
		case src.has(append(v, "prefix")...):
			h.Type, h.Value = "RegularExpression", regexp.QuoteMeta(src.str(append(v, "prefix")...))+".*"
		}
		out = append(out, v1alpha1.HTTPRouteMatch{Headers: []v1alpha1.HeaderMatch{h}})
	}
	return out
}

// argoBlueGreen maps Argo's blue-green onto promgate's nearest steps: the new version at
// full size (or previewReplicaCount) with no traffic and the pre-promotion analysis, then
// held for a human or autoPromotionSeconds; then all traffic and the post-promotion
// analysis.
func (c *converter) argoBlueGreen(src *source) *v1alpha1.ReleaseStrategy {
	base := []any{"spec", "strategy", "blueGreen"}
	at := func(keys ...any) []any { return append(slices.Clone(base), keys...) }
	active := src.str(at("activeService")...)
	st := &v1alpha1.ReleaseStrategy{TrafficRoutings: []v1alpha1.TrafficRouting{{Service: active}}}
	first := v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("0%")}
	if n, ok := src.num(at("previewReplicaCount")...); ok {
		first.Replicas = ptr.To(intstr.FromInt32(int32(n)))
	}
	if src.has(at("prePromotionAnalysis")...) {
		first.Analysis = rolloutAnalysis(src, at("prePromotionAnalysis"))
	}
	auto := src.boolean(true, at("autoPromotionEnabled")...)
	switch secs, ok := src.num(at("autoPromotionSeconds")...); {
	case !auto:
		first.Pause = &v1alpha1.RolloutPause{}
	case ok:
		first.Pause = &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: time.Duration(secs) * time.Second}}
	}
	second := v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")}
	if src.has(at("postPromotionAnalysis")...) {
		second.Analysis = rolloutAnalysis(src, at("postPromotionAnalysis"))
	}
	st.Steps = []v1alpha1.RolloutStep{first, second}
	if preview := src.str(at("previewService")...); preview != "" {
		src.say("spec.strategy.blueGreen.previewService %q: promgate generates %q for the new version; point what used %q at it", preview, active+traffic.CanarySuffix, preview)
	}
	src.note("the old pods go when the release completes", at("scaleDownDelaySeconds")...)
	src.note("the old pods go when the release completes", at("scaleDownDelayRevisionLimit")...)
	src.note("an abort keeps the new version's pods unless abortScaleDown", at("abortScaleDownDelaySeconds")...)
	src.note("promgate has no anti-affinity of its own", at("antiAffinity")...)
	src.note("pods carry promgate.io/release labels instead", at("activeMetadata")...)
	src.note("pods carry promgate.io/release labels instead", at("previewMetadata")...)
	return st
}
