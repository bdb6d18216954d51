package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

const (
	// AnnotationOriginalHTTP holds the VirtualService's own spec.http as JSON while weights
	// are applied.
	AnnotationOriginalHTTP = "promgate.io/original-http"
	// AnnotationOriginalSubsets holds the DestinationRule's own spec.subsets as JSON while
	// they are pinned to revisions.
	AnnotationOriginalSubsets = "promgate.io/original-subsets"
	// headerRouteSuffix names the header route inserted before a named route.
	headerRouteSuffix = "-promgate-canary"
)

// Istio's kinds, read and written unstructured: only a few fields of each matter here,
// and Istio's typed API would be a large dependency for them.
var (
	VirtualServiceGVK  = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}
	DestinationRuleGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}
)

// istioRouter weights the HTTP routes of the user's VirtualService, keeping its own
// spec.http in an annotation until Finish puts it back. Without a DestinationRule the
// destinations are the stable Service, pinned as the other routers pin it, and its
// "-canary" copy; with one they are two subsets of the Service's host, whose labels are
// pinned to the revisions instead, and the Service itself is left alone.
type istioRouter struct {
	serviceRouter
}

func (r *istioRouter) spec() *v1alpha1.IstioTrafficRouting { return r.t.Routing.Istio }
func (r *istioRouter) vsName() string                      { return r.spec().VirtualService.Name }
func (r *istioRouter) subsets() *v1alpha1.IstioDestinationRule {
	return r.spec().DestinationRule
}
func (r *istioRouter) path() *field.Path { return r.t.Field.Child("istio") }

// Validate checks the Service, the VirtualService (and DestinationRule), and that the
// routes can carry every step's matches.
func (r *istioRouter) Validate(ctx context.Context, steps []v1alpha1.RolloutStep, stepsPath *field.Path) error {
	if r.subsets() == nil {
		if err := r.validateService(ctx); err != nil {
			return err
		}
	} else if err := r.validateSubsetService(ctx); err != nil {
		return err
	}
	vs, err := r.getVS(ctx)
	if apierrors.IsNotFound(err) || isNoKind(err) {
		return fielderr.WithDetail(field.NotFound(r.path().Child("virtualService", "name"), r.vsName()),
			fmt.Sprintf("VirtualService %q not found in namespace %q%s", r.vsName(), r.t.Rollout.Namespace, noKindHint(err)))
	}
	if err != nil {
		return err
	}
	orig, _, err := originalHTTP(vs)
	if err != nil {
		return field.Invalid(r.path().Child("virtualService", "name"), r.vsName(), err.Error())
	}
	if _, err := r.selected(orig); err != nil {
		return err
	}
	if dr := r.subsets(); dr != nil {
		obj, err := r.getDR(ctx)
		if apierrors.IsNotFound(err) || isNoKind(err) {
			return fielderr.WithDetail(field.NotFound(r.path().Child("destinationRule", "name"), dr.Name),
				fmt.Sprintf("DestinationRule %q not found in namespace %q%s", dr.Name, r.t.Rollout.Namespace, noKindHint(err)))
		}
		if err != nil {
			return err
		}
		if _, _, err := r.originalSubsets(obj); err != nil {
			return err
		}
	}
	return checkStepMatches(steps, stepsPath, fmt.Sprintf("VirtualService %q", r.vsName()), func(matches []v1alpha1.HTTPRouteMatch) error {
		_, err := r.weightedHTTP(orig, 0, matches)
		return err
	})
}

// validateSubsetService checks what subset routing needs of the Service: that it exists
// and has a selector, which the subsets narrow.
func (r *istioRouter) validateSubsetService(ctx context.Context) error {
	if err := r.t.check(); err != nil {
		return err
	}
	if err := r.t.checkRolloutName(); err != nil {
		return err
	}
	path := r.t.Field.Child("service")
	svc, err := r.getService(ctx)
	if apierrors.IsNotFound(err) {
		return fielderr.WithDetail(field.NotFound(path, r.serviceName()), fmt.Sprintf("Service %q not found in namespace %q", r.serviceName(), r.t.Rollout.Namespace))
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 {
		return field.Invalid(path, r.serviceName(), fmt.Sprintf("the Service %q has no selector; its subsets are its pods of one revision", r.serviceName()))
	}
	return nil
}

// Route pins the Services (or the subsets), waits for the canary's endpoints when it is
// to get traffic, then weights the VirtualService.
func (r *istioRouter) Route(ctx context.Context, weight int32, matches []v1alpha1.HTTPRouteMatch) error {
	if err := r.prepare(weight); err != nil {
		return err
	}
	if err := checkHeaders(matches); err != nil {
		return fmt.Errorf("routing VirtualService %s: %w", r.vsName(), err)
	}
	if r.subsets() == nil {
		if err := r.ensureCanaryService(ctx); err != nil {
			return err
		}
		if err := r.pin(ctx, r.t.StableRevision); err != nil {
			return err
		}
	} else if err := r.pinSubsets(ctx, r.t.StableRevision, r.t.CanaryRevision); err != nil {
		return err
	}
	if weight > 0 || len(matches) > 0 {
		if err := r.awaitDestination(ctx, r.t.CanaryRevision); err != nil {
			return err
		}
	}
	return retryConflicts(func() error {
		vs, err := r.getVS(ctx)
		if err != nil {
			return fmt.Errorf("getting VirtualService %s/%s: %w", r.t.Rollout.Namespace, r.vsName(), err)
		}
		orig, saved, err := originalHTTP(vs)
		if err != nil {
			return err
		}
		want, err := r.weightedHTTP(orig, weight, matches)
		if err != nil {
			return fmt.Errorf("routing VirtualService %s: %w", r.vsName(), err)
		}
		current, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		if saved && equality.Semantic.DeepEqual(current, want) {
			return nil
		}
		if !saved {
			raw, err := json.Marshal(orig)
			if err != nil {
				return fmt.Errorf("saving the HTTP routes of VirtualService %s: %w", r.vsName(), err)
			}
			// In the same write as the weights: there is never a changed route without its original.
			setAnnotation(vs, AnnotationOriginalHTTP, string(raw))
		}
		if err := unstructured.SetNestedSlice(vs.Object, want, "spec", "http"); err != nil {
			return fmt.Errorf("routing VirtualService %s: %w", r.vsName(), err)
		}
		if err := r.c.Update(ctx, vs); err != nil {
			return fmt.Errorf("setting VirtualService %s/%s to %d%%: %w", r.t.Rollout.Namespace, r.vsName(), weight, err)
		}
		return nil
	})
}

// awaitDestination waits until rev's pods can receive what the VirtualService sends
// them: the canary Service's EndpointSlices holding them alone, or, for a subset, the
// Service's holding some of them.
func (r *istioRouter) awaitDestination(ctx context.Context, rev string) error {
	if r.subsets() == nil {
		return r.await(ctx, r.canaryServiceName(), rev)
	}
	if r.t.Endpoints == nil {
		return fmt.Errorf("traffic routing target has no Endpoints to wait for")
	}
	svc, err := r.getService(ctx)
	if err != nil {
		return err
	}
	return r.t.Endpoints.Serves(ctx, r.key(r.serviceName()), r.withRevision(svc.Spec.Selector, rev), rev)
}

// Finish takes traffic away from the loser first. Without a DestinationRule it is the
// gateway router's order; with one, the subsets are pinned to the winner (so neither
// sends to the loser) and, on completion, the routes go back once the winner serves.
func (r *istioRouter) Finish(ctx context.Context, winner string) error {
	if r.subsets() == nil {
		return r.finishAround(ctx, winner, r.restoreHTTP)
	}
	if err := r.t.check(); err != nil {
		return err
	}
	if err := r.t.checkWinner(winner); err != nil {
		return err
	}
	if winner == r.t.StableRevision {
		if err := r.restoreHTTP(ctx); err != nil {
			return err
		}
	}
	if err := r.pinSubsets(ctx, winner, winner); err != nil {
		return err
	}
	if err := r.awaitDestination(ctx, winner); err != nil {
		return err
	}
	return r.restoreHTTP(ctx)
}

// PinStable pins the stable Service, or the stable subset, to the stable revision.
func (r *istioRouter) PinStable(ctx context.Context) error {
	if r.subsets() == nil {
		return r.serviceRouter.PinStable(ctx)
	}
	if err := r.t.check(); err != nil {
		return err
	}
	if r.t.StableRevision == "" {
		return fmt.Errorf("no stable revision to pin to")
	}
	canary := r.t.CanaryRevision
	if canary == "" {
		// No new pods yet: the canary subset, which gets no traffic, selects none of them.
		canary = r.t.StableRevision
	}
	return r.pinSubsets(ctx, r.t.StableRevision, canary)
}

// Unpin restores the VirtualService, then the Service and its copy, or the
// DestinationRule, exactly.
func (r *istioRouter) Unpin(ctx context.Context) error {
	if r.subsets() == nil {
		return r.unpinAfter(ctx, r.restoreHTTP)
	}
	if err := r.t.check(); err != nil {
		return err
	}
	if err := r.restoreHTTP(ctx); err != nil {
		return err
	}
	return r.restoreSubsets(ctx)
}

func (r *istioRouter) getVS(ctx context.Context) (*unstructured.Unstructured, error) {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(VirtualServiceGVK)
	if err := r.c.Get(ctx, r.key(r.vsName()), vs); err != nil {
		return nil, err
	}
	return vs, nil
}

func (r *istioRouter) getDR(ctx context.Context) (*unstructured.Unstructured, error) {
	dr := &unstructured.Unstructured{}
	dr.SetGroupVersionKind(DestinationRuleGVK)
	if err := r.c.Get(ctx, r.key(r.subsets().Name), dr); err != nil {
		return nil, err
	}
	return dr, nil
}

// isNoKind reports a cluster that does not serve the kind: Istio is not installed.
func isNoKind(err error) bool { return meta.IsNoMatchError(err) }

func noKindHint(err error) string {
	if isNoKind(err) {
		return " (the cluster serves no networking.istio.io/v1 VirtualService or DestinationRule: is Istio installed?)"
	}
	return ""
}

// originalHTTP is the user's spec.http: from the annotation while weighted, else the
// VirtualService's own. saved reports that the annotation holds it.
func originalHTTP(vs *unstructured.Unstructured) (routes []any, saved bool, err error) {
	if raw, ok := vs.GetAnnotations()[AnnotationOriginalHTTP]; ok {
		if err := json.Unmarshal([]byte(raw), &routes); err != nil {
			return nil, true, fmt.Errorf("annotation %s of VirtualService %q is not JSON HTTP routes: %w", AnnotationOriginalHTTP, vs.GetName(), err)
		}
		// JSON numbers decode as float64, the API server's as int64: the same as the
		// server stores them, so that a second Route finds nothing to change.
		return normalize(routes).([]any), true, nil
	}
	routes, _, err = unstructured.NestedSlice(vs.Object, "spec", "http")
	if err != nil {
		return nil, false, fmt.Errorf("the spec.http of VirtualService %q is not a list of routes: %w", vs.GetName(), err)
	}
	return routes, false, nil
}

// normalize turns the whole float64s JSON decoding gives into the int64s unstructured
// objects hold.
func normalize(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalize(x[k])
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

// restoreHTTP puts the user's spec.http back exactly and removes the annotation.
func (r *istioRouter) restoreHTTP(ctx context.Context) error {
	return retryConflicts(func() error {
		vs, err := r.getVS(ctx)
		if apierrors.IsNotFound(err) || isNoKind(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("getting VirtualService %s/%s: %w", r.t.Rollout.Namespace, r.vsName(), err)
		}
		if _, ok := vs.GetAnnotations()[AnnotationOriginalHTTP]; !ok {
			return nil
		}
		routes, _, err := originalHTTP(vs)
		if err != nil {
			return err
		}
		if routes == nil {
			unstructured.RemoveNestedField(vs.Object, "spec", "http")
		} else if err := unstructured.SetNestedSlice(vs.Object, routes, "spec", "http"); err != nil {
			return err
		}
		removeAnnotation(vs, AnnotationOriginalHTTP)
		if err := r.c.Update(ctx, vs); err != nil {
			return fmt.Errorf("restoring the HTTP routes of VirtualService %s/%s: %w", r.t.Rollout.Namespace, r.vsName(), err)
		}
		return nil
	})
}

// isHost reports whether host names Service name in the Rollout's namespace, as Istio
// resolves a short name there: name, name.ns, name.ns.svc or name.ns.svc.<domain>.
func (r *istioRouter) isHost(host, name string) bool {
	first, rest, _ := strings.Cut(host, ".")
	ns := r.t.Rollout.Namespace
	return first == name && (rest == "" || rest == ns || rest == ns+".svc" || strings.HasPrefix(rest, ns+".svc."))
}

// canaryHost is host, a host of the stable Service, for its canary copy, written the same way.
func (r *istioRouter) canaryHost(host string) string {
	_, rest, dotted := strings.Cut(host, ".")
	if !dotted {
		return r.canaryServiceName()
	}
	return r.canaryServiceName() + "." + rest
}

// destinations classifies a route's destinations: the index of the one the weights are
// derived from (the stable Service, or the stable subset), or -1 when the route sends
// nothing to the Service; a route that also sends elsewhere is refused, as its split is
// the user's. A destination to the canary (the copy, or the canary subset) may already
// be there, at weight 0, as Argo Rollouts has users write it.
func (r *istioRouter) destinations(route map[string]any) (int, error) {
	dests, _, _ := unstructured.NestedSlice(route, "route")
	sub := r.subsets()
	stable, mine := -1, 0
	for i, d := range dests {
		dm, ok := d.(map[string]any)
		if !ok {
			return -1, fmt.Errorf("route[%d] is not an object", i)
		}
		host, _, _ := unstructured.NestedString(dm, "destination", "host")
		subset, _, _ := unstructured.NestedString(dm, "destination", "subset")
		switch {
		case sub == nil && r.isHost(host, r.canaryServiceName()):
			mine++
		case !r.isHost(host, r.serviceName()):
		case sub == nil:
			if stable < 0 {
				stable = i
			}
			mine++
		case subset == sub.StableSubsetName:
			stable = i
			mine++
		case subset == sub.CanarySubsetName:
			mine++
		default:
			return -1, fmt.Errorf("a destination to the Service %q has subset %q, neither %q nor %q", r.serviceName(), subset, sub.StableSubsetName, sub.CanarySubsetName)
		}
	}
	switch {
	case stable < 0 && mine > 0:
		return -1, fmt.Errorf("the route sends to the canary but not to the stable %s", r.stableWhat())
	case stable >= 0 && mine < len(dests):
		return -1, fmt.Errorf("the route sends to the Service %q and to %d other destinations; give the Service a route of its own", r.serviceName(), len(dests)-mine)
	}
	return stable, nil
}

// stableWhat names the stable destination in messages.
func (r *istioRouter) stableWhat() string {
	if sub := r.subsets(); sub != nil {
		return fmt.Sprintf("subset %q of the Service %q", sub.StableSubsetName, r.serviceName())
	}
	return fmt.Sprintf("Service %q", r.serviceName())
}

// selected returns the indexes of the routes whose traffic moves: those spec names, each
// of which must send to the Service, or every route that sends to it. There must be one.
func (r *istioRouter) selected(routes []any) ([]int, error) {
	vsPath := r.path().Child("virtualService")
	names := r.spec().VirtualService.Routes
	byName := map[string]int{}
	var out []int
	for i, rt := range routes {
		m, ok := rt.(map[string]any)
		if !ok {
			return nil, field.Invalid(vsPath.Child("name"), r.vsName(), fmt.Sprintf("http[%d] is not an object", i))
		}
		idx, err := r.destinations(m)
		if err != nil {
			return nil, field.Invalid(vsPath.Child("name"), r.vsName(), fmt.Sprintf("VirtualService %q http[%d]: %v", r.vsName(), i, err))
		}
		name, _, _ := unstructured.NestedString(m, "name")
		if name != "" {
			byName[name] = i
		}
		if len(names) == 0 && idx >= 0 {
			out = append(out, i)
		}
	}
	for j, name := range names {
		i, ok := byName[name]
		if !ok {
			return nil, fielderr.WithDetail(field.NotFound(vsPath.Child("routes").Index(j), name), fmt.Sprintf("VirtualService %q has no HTTP route named %q", r.vsName(), name))
		}
		if idx, _ := r.destinations(routes[i].(map[string]any)); idx < 0 {
			return nil, field.Invalid(vsPath.Child("routes").Index(j), name, fmt.Sprintf("the HTTP route %q of VirtualService %q has no destination to the Service %q", name, r.vsName(), r.serviceName()))
		}
		out = append(out, i)
	}
	if len(out) == 0 {
		return nil, field.Invalid(vsPath.Child("name"), r.vsName(), fmt.Sprintf("the VirtualService %q has no HTTP route with a destination to the Service %q", r.vsName(), r.serviceName()))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// weightedHTTP derives spec.http at weight from the user's routes: each selected route
// splits between the stable and the canary destination, and with matches it is preceded
// by a header route sending matching requests to the canary only.
func (r *istioRouter) weightedHTTP(orig []any, weight int32, matches []v1alpha1.HTTPRouteMatch) ([]any, error) {
	sel, err := r.selected(orig)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(orig)+len(sel))
	for i, rt := range orig {
		if !slices.Contains(sel, i) {
			out = append(out, runtime.DeepCopyJSONValue(rt))
			continue
		}
		route := runtime.DeepCopyJSONValue(rt).(map[string]any)
		dests, _, _ := unstructured.NestedSlice(route, "route")
		idx, _ := r.destinations(route)
		stable := runtime.DeepCopyJSONValue(dests[idx]).(map[string]any)
		canary := r.canaryDestination(stable)
		if len(matches) > 0 {
			header, err := r.headerRoute(route, canary, matches)
			if err != nil {
				return nil, fmt.Errorf("http[%d]: %w", i, err)
			}
			out = append(out, header)
		}
		stable["weight"] = int64(100 - weight)
		canary["weight"] = int64(weight)
		route["route"] = []any{stable, canary}
		out = append(out, route)
	}
	return out, nil
}

// canaryDestination is stable's destination (port, headers) sent to the canary Service's
// host, or to the canary subset.
func (r *istioRouter) canaryDestination(stable map[string]any) map[string]any {
	c := runtime.DeepCopyJSONValue(stable).(map[string]any)
	dest, _, _ := unstructured.NestedMap(c, "destination")
	if sub := r.subsets(); sub != nil {
		dest["subset"] = sub.CanarySubsetName
	} else {
		host, _, _ := unstructured.NestedString(dest, "host")
		dest["host"] = r.canaryHost(host)
	}
	c["destination"] = dest
	return c
}

// headerRoute is route with each of its matches extended by each step match's headers
// (lower-cased, as Istio requires) and the canary as its only destination.
func (r *istioRouter) headerRoute(route map[string]any, canary map[string]any, matches []v1alpha1.HTTPRouteMatch) (map[string]any, error) {
	base, _, _ := unstructured.NestedSlice(route, "match")
	if len(base) == 0 {
		base = []any{map[string]any{}}
	}
	var out []any
	for j, om := range base {
		for _, sm := range matches {
			m, ok := runtime.DeepCopyJSONValue(om).(map[string]any)
			if !ok {
				return nil, fmt.Errorf("match[%d] is not an object", j)
			}
			headers, _, _ := unstructured.NestedMap(m, "headers")
			if headers == nil {
				headers = map[string]any{}
			}
			for _, h := range sm.Headers {
				name := strings.ToLower(h.Name)
				if _, dup := headers[name]; dup {
					return nil, fmt.Errorf("match[%d] already matches header %q", j, name)
				}
				kind := "exact"
				if isRegex(h) {
					kind = "regex"
				}
				headers[name] = map[string]any{kind: h.Value}
			}
			m["headers"] = headers
			out = append(out, m)
		}
	}
	header := runtime.DeepCopyJSONValue(route).(map[string]any)
	if name, ok := header["name"].(string); ok && name != "" {
		header["name"] = name + headerRouteSuffix
	}
	header["match"] = out
	dest := runtime.DeepCopyJSONValue(canary).(map[string]any)
	dest["weight"] = int64(100)
	header["route"] = []any{dest}
	return header, nil
}

// originalSubsets is the user's spec.subsets: from the annotation while pinned, else the
// DestinationRule's own, which must hold both subsets, neither selecting by the revision
// label (it would be lost on restore), and whose host must be the Service.
func (r *istioRouter) originalSubsets(dr *unstructured.Unstructured) (subsets []any, saved bool, err error) {
	path := r.path().Child("destinationRule", "name")
	if raw, ok := dr.GetAnnotations()[AnnotationOriginalSubsets]; ok {
		if err := json.Unmarshal([]byte(raw), &subsets); err != nil {
			return nil, true, fmt.Errorf("annotation %s of DestinationRule %q is not JSON subsets: %w", AnnotationOriginalSubsets, dr.GetName(), err)
		}
		return normalize(subsets).([]any), true, nil
	}
	host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
	if !r.isHost(host, r.serviceName()) {
		return nil, false, field.Invalid(path, dr.GetName(), fmt.Sprintf("the DestinationRule %q is for host %q, not the Service %q", dr.GetName(), host, r.serviceName()))
	}
	subsets, _, err = unstructured.NestedSlice(dr.Object, "spec", "subsets")
	if err != nil {
		return nil, false, field.Invalid(path, dr.GetName(), fmt.Sprintf("the spec.subsets of DestinationRule %q is not a list: %v", dr.GetName(), err))
	}
	sub := r.subsets()
	for _, want := range []string{sub.StableSubsetName, sub.CanarySubsetName} {
		i := subsetIndex(subsets, want)
		if i < 0 {
			return nil, false, field.Invalid(path, dr.GetName(), fmt.Sprintf("the DestinationRule %q has no subset %q", dr.GetName(), want))
		}
		labels, _, _ := unstructured.NestedStringMap(subsets[i].(map[string]any), "labels")
		if _, ok := labels[r.t.revisionLabel()]; ok {
			return nil, false, field.Invalid(path, dr.GetName(), fmt.Sprintf("the subset %q of DestinationRule %q already selects by %s; select the workload's pods by their own labels", want, dr.GetName(), r.t.revisionLabel()))
		}
	}
	return subsets, false, nil
}

func subsetIndex(subsets []any, name string) int {
	return slices.IndexFunc(subsets, func(s any) bool {
		m, ok := s.(map[string]any)
		return ok && m["name"] == name
	})
}

// pinSubsets labels the stable subset with stable's revision and the canary subset with
// canary's, saving the user's subsets first.
func (r *istioRouter) pinSubsets(ctx context.Context, stable, canary string) error {
	sub := r.subsets()
	return retryConflicts(func() error {
		dr, err := r.getDR(ctx)
		if err != nil {
			return fmt.Errorf("getting DestinationRule %s/%s: %w", r.t.Rollout.Namespace, sub.Name, err)
		}
		orig, saved, err := r.originalSubsets(dr)
		if err != nil {
			return err
		}
		want := runtime.DeepCopyJSONValue(orig).([]any)
		for name, rev := range map[string]string{sub.StableSubsetName: stable, sub.CanarySubsetName: canary} {
			i := subsetIndex(want, name)
			if i < 0 {
				return fmt.Errorf("the DestinationRule %q has no subset %q", sub.Name, name)
			}
			s := want[i].(map[string]any)
			labels, _, _ := unstructured.NestedStringMap(s, "labels")
			labels = maps.Clone(labels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels[r.t.revisionLabel()] = rev
			if err := unstructured.SetNestedStringMap(s, labels, "labels"); err != nil {
				return err
			}
		}
		current, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		if saved && equality.Semantic.DeepEqual(current, want) {
			return nil
		}
		if !saved {
			raw, err := json.Marshal(orig)
			if err != nil {
				return fmt.Errorf("saving the subsets of DestinationRule %s: %w", sub.Name, err)
			}
			setAnnotation(dr, AnnotationOriginalSubsets, string(raw))
		}
		if err := unstructured.SetNestedSlice(dr.Object, want, "spec", "subsets"); err != nil {
			return err
		}
		if err := r.c.Update(ctx, dr); err != nil {
			return fmt.Errorf("pinning the subsets of DestinationRule %s/%s: %w", r.t.Rollout.Namespace, sub.Name, err)
		}
		return nil
	})
}

// restoreSubsets puts the user's subsets back exactly and removes the annotation.
func (r *istioRouter) restoreSubsets(ctx context.Context) error {
	sub := r.subsets()
	return retryConflicts(func() error {
		dr, err := r.getDR(ctx)
		if apierrors.IsNotFound(err) || isNoKind(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("getting DestinationRule %s/%s: %w", r.t.Rollout.Namespace, sub.Name, err)
		}
		if _, ok := dr.GetAnnotations()[AnnotationOriginalSubsets]; !ok {
			return nil
		}
		subsets, _, err := r.originalSubsets(dr)
		if err != nil {
			return err
		}
		if err := unstructured.SetNestedSlice(dr.Object, subsets, "spec", "subsets"); err != nil {
			return err
		}
		removeAnnotation(dr, AnnotationOriginalSubsets)
		if err := r.c.Update(ctx, dr); err != nil {
			return fmt.Errorf("restoring the subsets of DestinationRule %s/%s: %w", r.t.Rollout.Namespace, sub.Name, err)
		}
		return nil
	})
}
