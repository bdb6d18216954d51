package trafficsim

import (
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Istio's kinds the routing reads, unstructured.
var (
	virtualServiceList  = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualServiceList"}
	destinationRuleList = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRuleList"}
)

// virtualServiceShares routes a VirtualService's requests carrying headers (lower-case
// names) to its first HTTP route, in order, whose matches match them, split over the
// route's destinations by weight.
func (w *world) virtualServiceShares(name string, headers map[string]string) Shares {
	vs, ok := w.vss[name]
	if !ok {
		return unrouted()
	}
	routes, _, err := unstructured.NestedSlice(vs.Object, "spec", "http")
	if err != nil {
		w.problem("virtualservice %s: spec.http: %v; nothing routed", name, err)
		return unrouted()
	}
	for i, r := range routes {
		route, ok := r.(map[string]any)
		if !ok {
			w.problem("virtualservice %s: http[%d] is not an object; skipped", name, i)
			continue
		}
		if w.vsRouteMatches(name, route, headers) {
			return w.vsRouteShares(vs.GetNamespace(), name, route)
		}
	}
	return unrouted()
}

// vsRouteMatches: a route without matches takes everything; otherwise any one of its
// matches must hold in full. Requests carry no query string, so a match on query
// parameters fails; their uri, method and authority always match, as an HTTPRoute's
// paths and methods do here.
func (w *world) vsRouteMatches(vs string, route map[string]any, headers map[string]string) bool {
	matches, _, _ := unstructured.NestedSlice(route, "match")
	if len(matches) == 0 {
		return true
	}
	for _, m := range matches {
		mm, ok := m.(map[string]any)
		if ok && w.vsMatchHolds(vs, mm, headers) {
			return true
		}
	}
	return false
}

func (w *world) vsMatchHolds(vs string, m map[string]any, headers map[string]string) bool {
	if q, ok := m["queryParams"].(map[string]any); ok && len(q) > 0 {
		return false
	}
	hs, _, _ := unstructured.NestedMap(m, "headers")
	for name, raw := range hs {
		sm, ok := raw.(map[string]any)
		if !ok {
			w.problem("virtualservice %s: header %s match is not an object; the match fails", vs, name)
			return false
		}
		v, present := headers[strings.ToLower(name)]
		if !present {
			return false
		}
		switch {
		case sm["exact"] != nil:
			if v != sm["exact"] {
				return false
			}
		case sm["prefix"] != nil:
			prefix, _ := sm["prefix"].(string)
			if !strings.HasPrefix(v, prefix) {
				return false
			}
		case sm["regex"] != nil:
			expr, _ := sm["regex"].(string)
			// Envoy matches RE2 against the whole value.
			re, err := regexp.Compile("^(?:" + expr + ")$")
			if err != nil {
				w.problem("virtualservice %s: header %s regex %q: %v; the match fails", vs, name, expr, err)
				return false
			}
			if !re.MatchString(v) {
				return false
			}
		default:
			w.problem("virtualservice %s: header %s match has no exact, prefix or regex; the match fails", vs, name)
			return false
		}
	}
	return true
}

// vsRouteShares splits a route's requests over its destinations by weight: a lone
// destination without one takes everything. A destination is a Service of the
// VirtualService's namespace, narrowed to a DestinationRule subset when it names one.
func (w *world) vsRouteShares(namespace, vs string, route map[string]any) Shares {
	dests, _, _ := unstructured.NestedSlice(route, "route")
	type weighted struct {
		service string
		subset  map[string]string
		weight  int64
	}
	var refs []weighted
	var total int64
	for i, d := range dests {
		dm, ok := d.(map[string]any)
		if !ok {
			w.problem("virtualservice %s: route[%d] is not an object; ignored", vs, i)
			continue
		}
		weight, found, _ := unstructured.NestedInt64(dm, "weight")
		if !found && len(dests) == 1 {
			weight = 1
		}
		if weight <= 0 {
			continue
		}
		host, _, _ := unstructured.NestedString(dm, "destination", "host")
		svc, ok := hostService(host, namespace)
		if !ok {
			w.problem("virtualservice %s: destination host %q is not a Service of namespace %s; ignored", vs, host, namespace)
			continue
		}
		var subset map[string]string
		if name, _, _ := unstructured.NestedString(dm, "destination", "subset"); name != "" {
			if subset, ok = w.subsetLabels(svc, namespace, name); !ok {
				w.problem("virtualservice %s: no DestinationRule of host %s has a subset %q; ignored", vs, svc, name)
				continue
			}
		}
		refs = append(refs, weighted{service: svc, subset: subset, weight: weight})
		total += weight
	}
	if total == 0 {
		return unrouted()
	}
	out := Shares{}
	for _, r := range refs {
		out.add(w.subsetShares(r.service, r.subset), float64(r.weight)/float64(total))
	}
	return out
}

// hostService is the Service a destination host names: name, name.ns, name.ns.svc or
// name.ns.svc.<domain> in namespace n.
func hostService(host, n string) (string, bool) {
	name, rest, _ := strings.Cut(host, ".")
	if name == "" || !(rest == "" || rest == n || rest == n+".svc" || strings.HasPrefix(rest, n+".svc.")) {
		return "", false
	}
	return name, true
}

// subsetLabels are the labels of subset name of the first DestinationRule, by name, whose
// host is Service svc of namespace n.
func (w *world) subsetLabels(svc, n, name string) (map[string]string, bool) {
	for _, dr := range w.drs {
		host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
		if h, ok := hostService(host, dr.GetNamespace()); !ok || h != svc || dr.GetNamespace() != n {
			continue
		}
		subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		for _, s := range subsets {
			sm, ok := s.(map[string]any)
			if !ok || sm["name"] != name {
				continue
			}
			l, _, _ := unstructured.NestedStringMap(sm, "labels")
			if l == nil {
				l = map[string]string{}
			}
			return l, true
		}
	}
	return nil, false
}
