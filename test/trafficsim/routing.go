package trafficsim

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Pod annotations that give a revision its behaviour.
const (
	// AnnotationErrorRate is the fraction (0..1) of requests answered 500; default 0.
	AnnotationErrorRate = "sim.promgate.io/error-rate"
	// AnnotationLatency is the median latency of requests, a Go duration; default
	// DefaultLatency.
	AnnotationLatency = "sim.promgate.io/latency"
	// DefaultLatency is the latency of pods without a valid AnnotationLatency.
	DefaultLatency = 10 * time.Millisecond
	// AnnotationLatencySpread is the spread of latencies around the median: the standard
	// deviation of their natural logarithm (log-normal latencies), a number >= 0, e.g.
	// "0.25" puts about two thirds of the requests within 22% below to 28% above the
	// median. Default 0: every request takes the median.
	AnnotationLatencySpread = "sim.promgate.io/latency-spread"
)

// The ingress-nginx canary annotations the routing reads.
const (
	nginxCanary              = "nginx.ingress.kubernetes.io/canary"
	nginxCanaryByHeader      = "nginx.ingress.kubernetes.io/canary-by-header"
	nginxCanaryByHeaderValue = "nginx.ingress.kubernetes.io/canary-by-header-value"
	nginxCanaryByHeaderRegex = "nginx.ingress.kubernetes.io/canary-by-header-pattern"
	nginxCanaryWeight        = "nginx.ingress.kubernetes.io/canary-weight"
	nginxCanaryWeightTotal   = "nginx.ingress.kubernetes.io/canary-weight-total"
)

// The pod labels naming a revision: a Deployment's pods carry the first, a StatefulSet's
// the second.
const (
	podTemplateHash       = "pod-template-hash"
	controllerRevisionKey = "controller-revision-hash"
)

// revisionOf is the revision a pod runs.
func revisionOf(p *corev1.Pod) string {
	if h, ok := p.Labels[podTemplateHash]; ok {
		return h
	}
	return p.Labels[controllerRevisionKey]
}

// Objects are the objects of one namespace the routing reads.
type Objects struct {
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	Pods           []corev1.Pod
	Ingresses      []networkingv1.Ingress
	HTTPRoutes     []gatewayv1.HTTPRoute
	// VirtualServices and DestinationRules are Istio's networking.istio.io/v1 kinds,
	// unstructured.
	VirtualServices  []unstructured.Unstructured
	DestinationRules []unstructured.Unstructured
}

// Backend is where a share of requests ends: the pods of one revision behind a Service.
// Revision is empty when the Service's EndpointSlices hold no ready endpoint (the requests
// get 503) or its pods carry no revision label; Service is empty too when nothing routes
// the requests (404).
type Backend struct {
	Service  string
	Revision string
}

// Shares maps each backend to the fraction of requests it receives. The fractions sum to 1;
// backends that receive nothing are absent.
type Shares map[Backend]float64

// Split is how one entry's requests are shared out.
type Split struct {
	// All is the split of every request of the entry, Header weighted by Entry.HeaderShare
	// and Plain by the rest.
	All Shares
	// Header is the split of the requests that carry Entry.Headers, Plain of those that
	// carry none; both are computed even when Entry.HeaderShare makes one of them empty.
	Header Shares
	Plain  Shares
}

// Snapshot is the routing computed from one read of the objects.
type Snapshot struct {
	// Time is when the objects were read; zero before the first successful read.
	Time time.Time
	// Entries holds each entry's split, keyed by "Kind/Name", the metrics' entry label.
	Entries map[string]Split
	// Problems lists what the objects got wrong (invalid annotations, regular expressions,
	// unsupported references), sorted; the routing went on with defaults.
	Problems []string
}

// Entry returns the split of the entry with that kind and name (empty if there is none).
func (s Snapshot) Entry(kind, name string) Split {
	return s.Entries[entryKey(kind, name)]
}

func entryKey(kind, name string) string { return kind + "/" + name }

// Route computes where each entry's requests go among objs. It reads nothing else and
// never fails: what it cannot route goes to the empty Backend, what it cannot read
// becomes a default and a line in Snapshot.Problems. Time is left zero.
func Route(objs Objects, entries []Entry) Snapshot {
	return newWorld(objs).snapshot(entries)
}

// unrouted is the split of requests nothing routes; a fresh map each time, as snapshots
// hand their maps out.
func unrouted() Shares { return Shares{{}: 1} }

// world indexes one read of the objects for routing and memoizes per-Service results.
type world struct {
	services  map[string]*corev1.Service
	slices    map[string][]*discoveryv1.EndpointSlice // by Service name
	ingresses []*networkingv1.Ingress                 // sorted by name, so the choice among canaries is stable
	routes    map[string]*gatewayv1.HTTPRoute
	vss       map[string]*unstructured.Unstructured
	drs       []*unstructured.Unstructured // sorted by name, so the choice among rules of a host is stable
	pods      map[string]*corev1.Pod       // by name

	revisions map[string][]revision // by Service name, and subset labels for a subset
	problems  map[string]bool
}

// revision is the pods of one revision that a Service's EndpointSlices hold ready.
type revision struct {
	name string
	pods int
	// errorRate, latency (the median) and spread are the means over the pods; pods of
	// one revision share a template, so they normally agree.
	errorRate float64
	latency   time.Duration
	spread    float64
}

func newWorld(objs Objects) *world {
	w := &world{
		services:  map[string]*corev1.Service{},
		slices:    map[string][]*discoveryv1.EndpointSlice{},
		routes:    map[string]*gatewayv1.HTTPRoute{},
		vss:       map[string]*unstructured.Unstructured{},
		pods:      map[string]*corev1.Pod{},
		revisions: map[string][]revision{},
		problems:  map[string]bool{},
	}
	for i := range objs.Services {
		w.services[objs.Services[i].Name] = &objs.Services[i]
	}
	for i := range objs.Ingresses {
		w.ingresses = append(w.ingresses, &objs.Ingresses[i])
	}
	sort.Slice(w.ingresses, func(i, j int) bool { return w.ingresses[i].Name < w.ingresses[j].Name })
	for i := range objs.HTTPRoutes {
		w.routes[objs.HTTPRoutes[i].Name] = &objs.HTTPRoutes[i]
	}
	for i := range objs.VirtualServices {
		w.vss[objs.VirtualServices[i].GetName()] = &objs.VirtualServices[i]
	}
	for i := range objs.DestinationRules {
		w.drs = append(w.drs, &objs.DestinationRules[i])
	}
	sort.Slice(w.drs, func(i, j int) bool { return w.drs[i].GetName() < w.drs[j].GetName() })
	for i := range objs.EndpointSlices {
		es := &objs.EndpointSlices[i]
		if svc := es.Labels[discoveryv1.LabelServiceName]; svc != "" {
			w.slices[svc] = append(w.slices[svc], es)
		}
	}
	for i := range objs.Pods {
		w.pods[objs.Pods[i].Name] = &objs.Pods[i]
	}
	return w
}

func (w *world) problem(format string, args ...any) {
	w.problems[fmt.Sprintf(format, args...)] = true
}

func (w *world) snapshot(entries []Entry) Snapshot {
	snap := Snapshot{Entries: make(map[string]Split, len(entries))}
	for _, e := range entries {
		snap.Entries[entryKey(e.Kind, e.Name)] = w.split(e)
	}
	for p := range w.problems {
		snap.Problems = append(snap.Problems, p)
	}
	sort.Strings(snap.Problems)
	return snap
}

func (w *world) split(e Entry) Split {
	headers := make(map[string]string, len(e.Headers))
	for k, v := range e.Headers {
		headers[strings.ToLower(k)] = v
	}
	var s Split
	switch e.Kind {
	case KindService:
		s.Header = w.serviceShares(e.Name)
		s.Plain = s.Header
	case KindIngress:
		s.Header = w.ingressShares(e.Name, headers)
		s.Plain = w.ingressShares(e.Name, nil)
	case KindHTTPRoute:
		s.Header = w.httpRouteShares(e.Name, headers)
		s.Plain = w.httpRouteShares(e.Name, nil)
	case KindVirtualService:
		s.Header = w.virtualServiceShares(e.Name, headers)
		s.Plain = w.virtualServiceShares(e.Name, nil)
	default:
		s.Header, s.Plain = unrouted(), unrouted()
	}
	s.All = Shares{}
	s.All.add(s.Header, e.HeaderShare)
	s.All.add(s.Plain, 1-e.HeaderShare)
	return s
}

// add adds part of every share of o to s, leaving out backends that get nothing.
func (s Shares) add(o Shares, part float64) {
	if part <= 0 {
		return
	}
	for b, v := range o {
		if v > 0 {
			s[b] += v * part
		}
	}
}

// serviceShares spreads a Service's requests over its revisions by pod count.
func (w *world) serviceShares(name string) Shares { return w.subsetShares(name, nil) }

// subsetShares spreads a Service's requests over the revisions of its pods that subset
// (a DestinationRule subset's labels; nil for all of them) selects, by pod count.
func (w *world) subsetShares(name string, subset map[string]string) Shares {
	if name == "" {
		return unrouted()
	}
	revs := w.serviceRevisions(name, subset)
	if len(revs) == 0 {
		return Shares{{Service: name}: 1}
	}
	total := 0
	for _, r := range revs {
		total += r.pods
	}
	out := Shares{}
	for _, r := range revs {
		out[Backend{Service: name, Revision: r.name}] = float64(r.pods) / float64(total)
	}
	return out
}

// serviceRevisions groups the endpoints a Service's EndpointSlices hold ready by the
// revision of their pods, as a proxy sees them: a slice the endpointslice controller has
// not updated yet still sends requests to the pods it holds. A missing Service, or one
// without a selector (its endpoints are not pods), has none; so has an endpoint whose pod
// is gone. With subset, only the pods whose labels it selects count, as a mesh's proxy
// narrows a Service's endpoints to a subset's.
func (w *world) serviceRevisions(name string, subset map[string]string) []revision {
	key := name
	if subset != nil {
		key += "|" + labels.SelectorFromSet(subset).String()
	}
	if revs, ok := w.revisions[key]; ok {
		return revs
	}
	var revs []revision
	if svc, ok := w.services[name]; ok && len(svc.Spec.Selector) > 0 {
		index := map[string]int{}
		for _, es := range w.slices[name] {
			for _, ep := range es.Endpoints {
				// The API tells consumers to take an unknown readiness as ready.
				if (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
					continue
				}
				p, ok := w.pods[ep.TargetRef.Name]
				if !ok || (subset != nil && !labels.SelectorFromSet(subset).Matches(labels.Set(p.Labels))) {
					continue
				}
				hash := revisionOf(p)
				i, ok := index[hash]
				if !ok {
					i = len(revs)
					index[hash] = i
					revs = append(revs, revision{name: hash})
				}
				b := w.podBehaviour(p)
				revs[i].pods++
				revs[i].errorRate += b.errorRate
				revs[i].latency += b.latency
				revs[i].spread += b.spread
			}
		}
		for i := range revs {
			revs[i].errorRate /= float64(revs[i].pods)
			revs[i].latency /= time.Duration(revs[i].pods)
			revs[i].spread /= float64(revs[i].pods)
		}
	}
	w.revisions[key] = revs
	return revs
}

// revision finds the pods behind b; false when b is unrouted or its Service has no pod.
func (w *world) revision(b Backend) (revision, bool) {
	if b.Service == "" {
		return revision{}, false
	}
	for _, r := range w.serviceRevisions(b.Service, nil) {
		if r.name == b.Revision {
			return r, true
		}
	}
	return revision{}, false
}

// behaviour is how a pod answers.
type behaviour struct {
	errorRate float64
	latency   time.Duration
	spread    float64
}

// podBehaviour reads a pod's simulation annotations, falling back to the defaults.
func (w *world) podBehaviour(p *corev1.Pod) behaviour {
	b := behaviour{latency: DefaultLatency}
	if v, ok := p.Annotations[AnnotationErrorRate]; ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			w.problem("pod %s: %s %q is not a fraction in 0..1; using 0", p.Name, AnnotationErrorRate, v)
		} else {
			b.errorRate = f
		}
	}
	if v, ok := p.Annotations[AnnotationLatency]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			w.problem("pod %s: %s %q is not a non-negative Go duration; using %s", p.Name, AnnotationLatency, v, DefaultLatency)
		} else {
			b.latency = d
		}
	}
	if v, ok := p.Annotations[AnnotationLatencySpread]; ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			w.problem("pod %s: %s %q is not a finite number >= 0; using 0", p.Name, AnnotationLatencySpread, v)
		} else {
			b.spread = f
		}
	}
	return b
}

// location is one host and path an Ingress serves, and the Service behind it ("" when the
// backend is not a Service).
type location struct {
	host, path string
	service    string
}

// locations lists an Ingress's host and path pairs. An Ingress with no rule path serves
// its default backend, under an empty path no rule path has.
func locations(ing *networkingv1.Ingress) []location {
	var locs []location
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			path := p.Path
			if path == "" {
				// ingress-nginx serves an empty path as "/".
				path = "/"
			}
			locs = append(locs, location{host: r.Host, path: path, service: backendService(p.Backend)})
		}
	}
	if len(locs) == 0 && ing.Spec.DefaultBackend != nil {
		locs = append(locs, location{service: backendService(*ing.Spec.DefaultBackend)})
	}
	return locs
}

func backendService(b networkingv1.IngressBackend) string {
	if b.Service == nil {
		return ""
	}
	return b.Service.Name
}

func isCanary(ing *networkingv1.Ingress) bool {
	return ing.Annotations[nginxCanary] == "true"
}

// ingressShares routes an Ingress's requests carrying headers (lower-case names). The
// request names no host or path, so each location of the Ingress gets an equal part.
func (w *world) ingressShares(name string, headers map[string]string) Shares {
	var ing *networkingv1.Ingress
	for _, i := range w.ingresses {
		if i.Name == name {
			ing = i
		}
	}
	if ing == nil {
		return unrouted()
	}
	locs := locations(ing)
	if len(locs) == 0 {
		return unrouted()
	}
	part := 1 / float64(len(locs))
	out := Shares{}
	for _, loc := range locs {
		canary, canaryLoc := w.canaryFor(ing, loc)
		toCanary := 0.0
		if canary != nil {
			toCanary = w.canaryShare(canary, headers)
		}
		out.add(w.serviceShares(loc.service), part*(1-toCanary))
		if canary != nil {
			out.add(w.serviceShares(canaryLoc.service), part*toCanary)
		}
	}
	return out
}

// canaryFor finds the canary Ingress serving loc beside ing. ingress-nginx takes one canary
// per location; with several, the first by name wins and the rest is reported.
func (w *world) canaryFor(ing *networkingv1.Ingress, loc location) (*networkingv1.Ingress, location) {
	if isCanary(ing) {
		return nil, location{}
	}
	var found *networkingv1.Ingress
	var foundLoc location
	for _, c := range w.ingresses {
		if c.Name == ing.Name || !isCanary(c) {
			continue
		}
		for _, l := range locations(c) {
			if l.host != loc.host || l.path != loc.path {
				continue
			}
			if found == nil {
				found, foundLoc = c, l
			} else if found != c {
				w.problem("ingress %s: canaries %s and %s both serve host %q path %q; using %s",
					ing.Name, found.Name, c.Name, loc.host, loc.path, found.Name)
			}
			break
		}
	}
	return found, foundLoc
}

// canaryShare is the fraction of requests carrying headers that the canary takes, as
// ingress-nginx decides: a header decision first, the weight for the rest.
func (w *world) canaryShare(c *networkingv1.Ingress, headers map[string]string) float64 {
	a := c.Annotations
	if name := a[nginxCanaryByHeader]; name != "" {
		if v, ok := headers[strings.ToLower(name)]; ok {
			switch {
			case a[nginxCanaryByHeaderValue] != "":
				if v == a[nginxCanaryByHeaderValue] {
					return 1
				}
			case a[nginxCanaryByHeaderRegex] != "":
				re, err := regexp.Compile(a[nginxCanaryByHeaderRegex])
				if err != nil {
					w.problem("ingress %s: %s %q: %v; ignored", c.Name, nginxCanaryByHeaderRegex, a[nginxCanaryByHeaderRegex], err)
				} else if re.MatchString(v) {
					return 1
				}
			case v == "always":
				return 1
			case v == "never":
				return 0
			}
		}
	}
	weight := w.ingressInt(c, nginxCanaryWeight, 0, 0)
	total := w.ingressInt(c, nginxCanaryWeightTotal, 100, 1)
	return math.Min(float64(weight)/float64(total), 1)
}

// ingressInt reads an integer annotation of at least lowest, reporting and defaulting a
// bad one.
func (w *world) ingressInt(ing *networkingv1.Ingress, key string, def, lowest int) int {
	v, ok := ing.Annotations[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lowest {
		w.problem("ingress %s: %s %q is not an integer >= %d; using %d", ing.Name, key, v, lowest, def)
		return def
	}
	return n
}

// httpRouteShares routes an HTTPRoute's requests carrying headers (lower-case names) to
// the first rule that matches them.
func (w *world) httpRouteShares(name string, headers map[string]string) Shares {
	route, ok := w.routes[name]
	if !ok {
		return unrouted()
	}
	for i := range route.Spec.Rules {
		rule := &route.Spec.Rules[i]
		if w.ruleMatches(route, rule, headers) {
			return w.ruleShares(route, rule)
		}
	}
	return unrouted()
}

// ruleMatches: a rule without matches takes everything; otherwise any one of its matches
// must hold in full.
func (w *world) ruleMatches(route *gatewayv1.HTTPRoute, rule *gatewayv1.HTTPRouteRule, headers map[string]string) bool {
	if len(rule.Matches) == 0 {
		return true
	}
	for _, m := range rule.Matches {
		if w.matchHolds(route, m, headers) {
			return true
		}
	}
	return false
}

func (w *world) matchHolds(route *gatewayv1.HTTPRoute, m gatewayv1.HTTPRouteMatch, headers map[string]string) bool {
	if len(m.QueryParams) > 0 {
		// The simulated requests carry no query string.
		return false
	}
	for _, h := range m.Headers {
		v, ok := headers[strings.ToLower(string(h.Name))]
		if !ok {
			return false
		}
		typ := gatewayv1.HeaderMatchExact
		if h.Type != nil {
			typ = *h.Type
		}
		switch typ {
		case gatewayv1.HeaderMatchExact:
			if v != h.Value {
				return false
			}
		case gatewayv1.HeaderMatchRegularExpression:
			// Gateways built on Envoy match the whole value, so the expression is anchored.
			re, err := regexp.Compile("^(?:" + h.Value + ")$")
			if err != nil {
				w.problem("httproute %s: header %s regular expression %q: %v; the match fails", route.Name, h.Name, h.Value, err)
				return false
			}
			if !re.MatchString(v) {
				return false
			}
		default:
			w.problem("httproute %s: header %s match type %q is not supported; the match fails", route.Name, h.Name, typ)
			return false
		}
	}
	return true
}

// ruleShares splits a rule's requests over its Service backendRefs by weight (default 1).
// References to other kinds or namespaces are reported and left out.
func (w *world) ruleShares(route *gatewayv1.HTTPRoute, rule *gatewayv1.HTTPRouteRule) Shares {
	type weighted struct {
		service string
		weight  int32
	}
	var refs []weighted
	var total int64
	for _, ref := range rule.BackendRefs {
		weight := int32(1)
		if ref.Weight != nil {
			weight = *ref.Weight
		}
		if weight <= 0 {
			continue
		}
		obj := ref.BackendObjectReference
		if (obj.Group != nil && *obj.Group != "") || (obj.Kind != nil && *obj.Kind != "Service") {
			w.problem("httproute %s: backendRef %s is not a core Service; ignored", route.Name, obj.Name)
			continue
		}
		if obj.Namespace != nil && string(*obj.Namespace) != route.Namespace {
			w.problem("httproute %s: backendRef %s is in namespace %s; ignored", route.Name, obj.Name, *obj.Namespace)
			continue
		}
		refs = append(refs, weighted{service: string(obj.Name), weight: weight})
		total += int64(weight)
	}
	if total == 0 {
		return unrouted()
	}
	out := Shares{}
	for _, r := range refs {
		out.add(w.serviceShares(r.service), float64(r.weight)/float64(total))
	}
	return out
}
