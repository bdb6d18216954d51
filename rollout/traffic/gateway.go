package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

// Limits of the HTTPRoute CRD (gateway.networking.k8s.io/v1, v1.4.1); Validate checks them
// so that a step the route cannot carry is reported before the release starts.
const (
	maxRules           = 16
	maxMatchesPerRule  = 64
	maxMatchesPerRoute = 128
	maxHeadersPerMatch = 16
)

// gatewayRouter weights the backendRefs of the user's HTTPRoute and inserts header rules,
// keeping the user's rules in an annotation until Finish puts them back.
type gatewayRouter struct {
	serviceRouter
}

func (r *gatewayRouter) routeName() string { return r.t.Routing.Gateway.HTTPRouteName }

// Validate checks the Services, the HTTPRoute, and that it can carry every step's matches.
func (r *gatewayRouter) Validate(ctx context.Context, steps []v1alpha1.RolloutStep, stepsPath *field.Path) error {
	if err := r.validateService(ctx); err != nil {
		return err
	}
	path := r.t.Field.Child("gateway", "httpRouteName")
	var route gatewayv1.HTTPRoute
	if err := r.c.Get(ctx, r.key(r.routeName()), &route); err != nil {
		if apierrors.IsNotFound(err) {
			return fielderr.WithDetail(field.NotFound(path, r.routeName()), fmt.Sprintf("HTTPRoute %q not found in namespace %q", r.routeName(), r.t.Rollout.Namespace))
		}
		return fmt.Errorf("getting HTTPRoute %s/%s: %w", r.t.Rollout.Namespace, r.routeName(), err)
	}
	orig, _, err := originalRules(&route)
	if err != nil {
		return field.Invalid(path, r.routeName(), err.Error())
	}
	if err := r.checkRules(&route, orig); err != nil {
		return field.Invalid(path, r.routeName(), err.Error())
	}
	return checkSteps(steps, stepsPath, func(path *field.Path, _ *int32, matches []v1alpha1.HTTPRouteMatch) *field.Error {
		if len(matches) == 0 {
			return nil
		}
		if err := checkHeaders(matches); err != nil {
			return field.Invalid(path.Child("matches"), matches, err.Error())
		}
		if _, err := r.weightedRules(orig, 0, matches); err != nil {
			return field.Invalid(path.Child("matches"), matches, fmt.Sprintf("HTTPRoute %q cannot carry these matches: %v", r.routeName(), err))
		}
		return nil
	})
}

// Route keeps the canary Service and the stable pin in place, then weights the HTTPRoute.
func (r *gatewayRouter) Route(ctx context.Context, weight int32, matches []v1alpha1.HTTPRouteMatch) error {
	if err := r.prepare(weight); err != nil {
		return err
	}
	if err := checkHeaders(matches); err != nil {
		return fmt.Errorf("routing HTTPRoute %s: %w", r.routeName(), err)
	}
	if err := r.ensureCanaryService(ctx); err != nil {
		return err
	}
	if err := r.pin(ctx, r.t.StableRevision); err != nil {
		return err
	}
	if weight > 0 || len(matches) > 0 {
		if err := r.awaitCanary(ctx); err != nil {
			return err
		}
	}
	return retryConflicts(func() error {
		var route gatewayv1.HTTPRoute
		if err := r.c.Get(ctx, r.key(r.routeName()), &route); err != nil {
			return fmt.Errorf("getting HTTPRoute %s/%s: %w", r.t.Rollout.Namespace, r.routeName(), err)
		}
		orig, saved, err := originalRules(&route)
		if err != nil {
			return err
		}
		if err := r.checkRules(&route, orig); err != nil {
			return err
		}
		want, err := r.weightedRules(orig, weight, matches)
		if err != nil {
			return fmt.Errorf("routing HTTPRoute %s: %w", route.Name, err)
		}
		if saved && equality.Semantic.DeepEqual(route.Spec.Rules, want) {
			return nil
		}
		if !saved {
			raw, err := json.Marshal(orig)
			if err != nil {
				return fmt.Errorf("saving the rules of HTTPRoute %s: %w", route.Name, err)
			}
			// In the same write as the weights: there is never a changed route without its original.
			setAnnotation(&route, AnnotationOriginalRules, string(raw))
		}
		route.Spec.Rules = want
		if err := r.c.Update(ctx, &route); err != nil {
			return fmt.Errorf("setting HTTPRoute %s/%s to %d%%: %w", route.Namespace, route.Name, weight, err)
		}
		return nil
	})
}

// Finish takes traffic away from the loser first: on completion the weights go back only
// once the stable Service's EndpointSlices hold the canary pods alone, so no request
// returns to the old version; on abort the weights go back first, which is the write
// that stops canary traffic.
func (r *gatewayRouter) Finish(ctx context.Context, winner string) error {
	return r.finishAround(ctx, winner, r.restoreRules)
}

// Unpin also restores the HTTPRoute, so that it never points at a deleted Service should
// Unpin come without Finish.
func (r *gatewayRouter) Unpin(ctx context.Context) error {
	return r.unpinAfter(ctx, r.restoreRules)
}

// originalRules are the user's rules: from the annotation while weighted, else the route's
// own. saved reports that the annotation holds them.
func originalRules(route *gatewayv1.HTTPRoute) (rules []gatewayv1.HTTPRouteRule, saved bool, err error) {
	raw, ok := route.Annotations[AnnotationOriginalRules]
	if !ok {
		for _, rule := range route.Spec.Rules {
			rules = append(rules, *rule.DeepCopy())
		}
		return rules, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &rules); err != nil {
		return nil, true, fmt.Errorf("annotation %s of HTTPRoute %q is not JSON HTTPRoute rules: %w", AnnotationOriginalRules, route.Name, err)
	}
	return rules, true, nil
}

// restoreRules puts the user's rules back exactly and removes the annotation.
func (r *gatewayRouter) restoreRules(ctx context.Context) error {
	return retryConflicts(func() error {
		var route gatewayv1.HTTPRoute
		if err := r.c.Get(ctx, r.key(r.routeName()), &route); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("getting HTTPRoute %s/%s: %w", r.t.Rollout.Namespace, r.routeName(), err)
		}
		if _, ok := route.Annotations[AnnotationOriginalRules]; !ok {
			return nil
		}
		rules, _, err := originalRules(&route)
		if err != nil {
			return err
		}
		route.Spec.Rules = rules
		removeAnnotation(&route, AnnotationOriginalRules)
		if err := r.c.Update(ctx, &route); err != nil {
			return fmt.Errorf("restoring the rules of HTTPRoute %s/%s: %w", route.Namespace, route.Name, err)
		}
		return nil
	})
}

// refersToService reports a backendRef to the stable Service in the route's namespace.
func (r *gatewayRouter) refersToService(ref gatewayv1.BackendObjectReference) bool {
	return string(ref.Name) == r.serviceName() &&
		(ref.Group == nil || *ref.Group == "") &&
		(ref.Kind == nil || *ref.Kind == "Service") &&
		(ref.Namespace == nil || string(*ref.Namespace) == r.t.Rollout.Namespace)
}

// stableRef is the index of rule's backendRef to the stable Service, -1 when it has none.
// A rule that also sends to other backends is refused: its weights are the user's split,
// which one canary weight cannot preserve.
func (r *gatewayRouter) stableRef(rule gatewayv1.HTTPRouteRule) (int, error) {
	idx := -1
	for i, ref := range rule.BackendRefs {
		if r.refersToService(ref.BackendObjectReference) {
			idx = i
		}
	}
	if idx >= 0 && len(rule.BackendRefs) > 1 {
		return -1, fmt.Errorf("a rule sends to the Service %q and to %d other backendRefs; give the Service a rule of its own", r.serviceName(), len(rule.BackendRefs)-1)
	}
	return idx, nil
}

// checkRules requires at least one rule whose only backend is the stable Service.
func (r *gatewayRouter) checkRules(route *gatewayv1.HTTPRoute, rules []gatewayv1.HTTPRouteRule) error {
	found := false
	for i, rule := range rules {
		idx, err := r.stableRef(rule)
		if err != nil {
			return fmt.Errorf("HTTPRoute %q rule %d: %w", route.Name, i, err)
		}
		found = found || idx >= 0
	}
	if !found {
		return fmt.Errorf("the HTTPRoute %q has no rule with a backendRef to the Service %q", route.Name, r.serviceName())
	}
	return nil
}

// canaryRef is ref (port, filters) sent to the canary Service with weight.
func (r *gatewayRouter) canaryRef(ref gatewayv1.HTTPBackendRef, weight int32) gatewayv1.HTTPBackendRef {
	c := *ref.DeepCopy()
	c.Name = gatewayv1.ObjectName(r.canaryServiceName())
	c.Weight = ptr.To(weight)
	return c
}

// weightedRules derives the route's rules at weight from the user's rules: each rule whose
// backend is the stable Service splits between the stable and the canary Service, and with
// matches it is preceded by a header rule sending matching requests to the canary only.
// Every field the API server would default is set, so a second Route finds nothing to
// change.
func (r *gatewayRouter) weightedRules(orig []gatewayv1.HTTPRouteRule, weight int32, matches []v1alpha1.HTTPRouteMatch) ([]gatewayv1.HTTPRouteRule, error) {
	var out []gatewayv1.HTTPRouteRule
	for i, rule := range orig {
		idx, err := r.stableRef(rule)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if idx < 0 {
			out = append(out, *rule.DeepCopy())
			continue
		}
		ref := rule.BackendRefs[idx]
		if len(matches) > 0 {
			header, err := r.headerRule(rule, ref, matches)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %w", i, err)
			}
			out = append(out, header)
		}
		weighted := *rule.DeepCopy()
		stable := *ref.DeepCopy()
		stable.Weight = ptr.To(100 - weight)
		weighted.BackendRefs = []gatewayv1.HTTPBackendRef{stable, r.canaryRef(ref, weight)}
		out = append(out, weighted)
	}
	if len(out) > maxRules {
		return nil, fmt.Errorf("the route would need %d rules, more than the %d an HTTPRoute holds", len(out), maxRules)
	}
	total := 0
	for _, rule := range out {
		total += len(rule.Matches)
	}
	if total > maxMatchesPerRoute {
		return nil, fmt.Errorf("the route would need %d matches, more than the %d an HTTPRoute holds", total, maxMatchesPerRoute)
	}
	return out, nil
}

// headerRule is rule with each of its matches extended by each step match's headers and
// the canary Service as its only backend. Its name is dropped: rule names are unique.
func (r *gatewayRouter) headerRule(rule gatewayv1.HTTPRouteRule, ref gatewayv1.HTTPBackendRef, matches []v1alpha1.HTTPRouteMatch) (gatewayv1.HTTPRouteRule, error) {
	base := rule.Matches
	if len(base) == 0 {
		// What the API server defaults a rule without matches to.
		base = []gatewayv1.HTTPRouteMatch{{}}
	}
	var out []gatewayv1.HTTPRouteMatch
	for j, om := range base {
		for _, sm := range matches {
			m := *om.DeepCopy()
			if m.Path == nil {
				m.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}
			}
			for _, h := range sm.Headers {
				for _, existing := range m.Headers {
					if strings.EqualFold(string(existing.Name), h.Name) {
						return gatewayv1.HTTPRouteRule{}, fmt.Errorf("match %d already matches header %q", j, h.Name)
					}
				}
				typ := gatewayv1.HeaderMatchExact
				if isRegex(h) {
					typ = gatewayv1.HeaderMatchRegularExpression
				}
				m.Headers = append(m.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(typ), Name: gatewayv1.HTTPHeaderName(h.Name), Value: h.Value})
			}
			if len(m.Headers) > maxHeadersPerMatch {
				return gatewayv1.HTTPRouteRule{}, fmt.Errorf("match %d would need %d headers, more than the %d a match holds", j, len(m.Headers), maxHeadersPerMatch)
			}
			out = append(out, m)
		}
	}
	if len(out) > maxMatchesPerRule {
		return gatewayv1.HTTPRouteRule{}, fmt.Errorf("the header rule would need %d matches, more than the %d a rule holds", len(out), maxMatchesPerRule)
	}
	if len(out) != 1 && replacesPrefix(rule) {
		return gatewayv1.HTTPRouteRule{}, fmt.Errorf("the rule rewrites its matched path prefix, which allows exactly one match, and the header rule would need %d; use one header match", len(out))
	}
	header := *rule.DeepCopy()
	header.Name = nil
	header.Matches = out
	header.BackendRefs = []gatewayv1.HTTPBackendRef{r.canaryRef(ref, 100)}
	return header, nil
}

// replacesPrefix reports a rule whose filters replace the matched path prefix: the API
// server then accepts exactly one match in the rule.
func replacesPrefix(rule gatewayv1.HTTPRouteRule) bool {
	filters := slices.Clone(rule.Filters)
	for _, ref := range rule.BackendRefs {
		filters = append(filters, ref.Filters...)
	}
	for _, f := range filters {
		var path *gatewayv1.HTTPPathModifier
		switch {
		case f.URLRewrite != nil:
			path = f.URLRewrite.Path
		case f.RequestRedirect != nil:
			path = f.RequestRedirect.Path
		}
		if path != nil && path.Type == gatewayv1.PrefixMatchHTTPPathModifier {
			return true
		}
	}
	return false
}
