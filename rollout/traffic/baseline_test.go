package traffic

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

const baselineRev = "5b6c7d8f9"

func withBaseline(rule gatewayv1.HTTPRouteRule, stable, canary int32) gatewayv1.HTTPRouteRule {
	rule = weighted(rule, stable, canary)
	rule.BackendRefs = append(rule.BackendRefs, backendRef("web-baseline", canary))
	return rule
}

func baselineTarget(ep *fakeEndpoints) Target {
	t := target(gatewayRouting())
	t.BaselineRevision, t.Endpoints = baselineRev, ep
	return t
}

// A baseline gets the canary's weight from the stable Service's, through a Service of its
// own that selects its revision; the route waits for that Service's EndpointSlices as it
// does for the canary's.
func TestGatewayRoutesTheBaselineAtTheCanarysWeight(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testRoute())
	orig := testRoute().Spec.Rules
	ep := &fakeEndpoints{holds: map[string]string{"web-baseline": ""}}
	r := New(c, baselineTarget(ep))

	require.NoError(t, r.Route(ctx, 0, nil), "no traffic to the baseline needs no endpoint of it")
	assert.Equal(t, []string{"create *v1.Service web-canary", "create *v1.Service web-baseline", "update *v1.Service web", "update *v1.HTTPRoute web"}, rec.reset())
	assert.Equal(t, []gatewayv1.HTTPRouteRule{withBaseline(orig[0], 100, 0), orig[1], withBaseline(orig[2], 100, 0)}, getRoute(t, c).Spec.Rules)
	svc := getService(t, c, "web-baseline")
	assert.Equal(t, pinned(baselineRev), svc.Spec.Selector, "the baseline pods among the user's")
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	assert.True(t, metav1.IsControlledBy(svc, testRollout()))

	var nr *NotReadyError
	require.ErrorAs(t, r.Route(ctx, 20, nil), &nr, "the baseline Service has no ready endpoint yet")
	assert.Equal(t, "web-baseline", nr.Service)
	assert.Empty(t, rec.reset(), "nothing is routed while it waits")
	ep.holds = nil
	require.NoError(t, r.Route(ctx, 20, nil))
	assert.Equal(t, []string{"update *v1.HTTPRoute web"}, rec.reset())
	assert.Equal(t, []gatewayv1.HTTPRouteRule{withBaseline(orig[0], 60, 20), orig[1], withBaseline(orig[2], 60, 20)}, getRoute(t, c).Spec.Rules)
	require.NoError(t, r.Route(ctx, 20, nil))
	assert.Empty(t, rec.reset(), "a second Route writes nothing")

	err := r.Route(ctx, 60, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "twice is more than all the traffic")
	assert.Empty(t, rec.reset())

	require.NoError(t, r.Route(ctx, 50, []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}))
	got := getRoute(t, c).Spec.Rules
	require.Len(t, got, 5)
	assert.Equal(t, []gatewayv1.HTTPBackendRef{backendRef("web-canary", 100)}, got[0].BackendRefs, "matching requests go to the canary alone")
	assert.Equal(t, withBaseline(orig[0], 0, 50), got[1])
}

// Dropping the baseline gives its weight back to the stable Service and leaves the canary's
// weight and header rules as they are; then its Service goes.
func TestGatewayDropBaselineKeepsTheCanarysShare(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testRoute())
	orig := testRoute().Spec.Rules
	matches := []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}
	require.NoError(t, New(c, baselineTarget(&fakeEndpoints{})).Route(ctx, 30, matches))
	rec.reset()

	plain := New(c, target(gatewayRouting()))
	want, err := plain.(*gatewayRouter).weightedRules(orig, 30, matches)
	require.NoError(t, err)
	br, ok := plain.(BaselineRouter)
	require.True(t, ok, "the gateway router carries baselines")
	require.NoError(t, br.DropBaseline(ctx))
	assert.Equal(t, []string{"update *v1.HTTPRoute web", "delete *v1.Service web-baseline"}, rec.reset(), "the route first, so no request goes to a deleted Service")
	assert.Equal(t, want, getRoute(t, c).Spec.Rules, "the rules of the same step without a baseline")
	assert.False(t, exists(t, c, &corev1.Service{}, "web-baseline"))
	require.NoError(t, br.DropBaseline(ctx))
	assert.Empty(t, rec.reset(), "a second DropBaseline writes nothing")

	require.NoError(t, plain.Finish(ctx, stableRev))
	assert.Equal(t, testRoute().Spec, getRoute(t, c).Spec, "the user's rules, which never held the baseline")
}

// An abort, cancel, disable or delete restores the user's rules and deletes the baseline's
// Service with them, whether or not the baseline was dropped first.
func TestGatewayFinishAndUnpinDeleteTheBaselineService(t *testing.T) {
	for _, end := range []struct {
		name string
		do   func(ctx context.Context, r Router) error
	}{
		{"finish on stable", func(ctx context.Context, r Router) error { return r.Finish(ctx, stableRev) }},
		{"finish on canary", func(ctx context.Context, r Router) error { return r.Finish(ctx, canaryRev) }},
		{"unpin", func(ctx context.Context, r Router) error { return r.Unpin(ctx) }},
	} {
		t.Run(end.name, func(t *testing.T) {
			ctx := context.Background()
			c, rec := newClient(t, nil, testService(), testRoute())
			r := New(c, baselineTarget(&fakeEndpoints{}))
			require.NoError(t, r.Route(ctx, 20, nil))
			rec.reset()
			require.NoError(t, end.do(ctx, r))
			writes := rec.reset()
			assert.Contains(t, writes, "delete *v1.Service web-baseline")
			assert.Less(t, indexOf(writes, "update *v1.HTTPRoute web"), indexOf(writes, "delete *v1.Service web-baseline"), "the route goes back first: %v", writes)
			assert.Equal(t, testRoute().Spec, getRoute(t, c).Spec)
			assert.False(t, exists(t, c, &corev1.Service{}, "web-baseline"))
		})
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// A Service of the baseline's name the user owns is reported before a release starts, when
// a step asks for a baseline, and never touched.
func TestGatewayValidateRefusesTheUsersBaselineService(t *testing.T) {
	ctx := context.Background()
	users := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-baseline"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "other"}}}
	c, _ := newClient(t, nil, testService(), testRoute(), users)
	r := New(c, target(gatewayRouting()))
	require.NoError(t, r.Validate(ctx, []v1alpha1.RolloutStep{{Traffic: traffic("20%")}}, stepsPath), "a release without a baseline does not need the name")

	err := r.Validate(ctx, []v1alpha1.RolloutStep{{Traffic: traffic("20%"), Baseline: &v1alpha1.RolloutBaseline{Replicas: 1}}}, stepsPath)
	var fe *field.Error
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, routingField+".service", fe.Field)
	assert.Contains(t, fe.Detail, `Service "web-baseline" exists and was not generated by this Rollout`)

	require.Error(t, New(c, baselineTarget(&fakeEndpoints{})).Route(ctx, 0, nil))
	assert.Equal(t, map[string]string{"app": "other"}, getService(t, c, "web-baseline").Spec.Selector, "the user's Service is untouched")
	assert.Equal(t, ptr.To[int32](1), getRoute(t, c).Spec.Rules[0].BackendRefs[0].Weight, "and nothing was routed")
}
