package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

func weighted(rule gatewayv1.HTTPRouteRule, stable, canary int32) gatewayv1.HTTPRouteRule {
	rule = *rule.DeepCopy()
	rule.BackendRefs = []gatewayv1.HTTPBackendRef{backendRef("web", stable), backendRef("web-canary", canary)}
	return rule
}

func withHeader(m gatewayv1.HTTPRouteMatch, name, value string) gatewayv1.HTTPRouteMatch {
	m = *m.DeepCopy()
	m.Headers = append(m.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	return m
}

func TestGatewayRouteWeightsAndHeaderRules(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testRoute())
	orig := testRoute().Spec.Rules
	route := func(w int32, m ...v1alpha1.HTTPRouteMatch) error {
		return New(c, target(gatewayRouting())).Route(ctx, w, m)
	}

	require.NoError(t, route(0))
	assert.Equal(t, []string{"create *v1.Service web-canary", "update *v1.Service web", "update *v1.HTTPRoute web"}, rec.reset(),
		"the canary Service exists and the stable one is pinned before weights move")
	got := getRoute(t, c)
	assert.Equal(t, []gatewayv1.HTTPRouteRule{weighted(orig[0], 100, 0), orig[1], weighted(orig[2], 100, 0)}, got.Spec.Rules)
	var saved []gatewayv1.HTTPRouteRule
	require.NoError(t, json.Unmarshal([]byte(got.Annotations[AnnotationOriginalRules]), &saved))
	assert.Equal(t, orig, saved)
	assert.Equal(t, "shop", got.Annotations["team"])

	require.NoError(t, route(30, header("X-Canary", "always")))
	assert.Equal(t, []string{"update *v1.HTTPRoute web"}, rec.reset())
	headerAPI := *orig[0].DeepCopy()
	headerAPI.Name = nil
	headerAPI.Matches = []gatewayv1.HTTPRouteMatch{withHeader(orig[0].Matches[0], "X-Canary", "always"), withHeader(orig[0].Matches[1], "X-Canary", "always")}
	headerAPI.BackendRefs = []gatewayv1.HTTPBackendRef{backendRef("web-canary", 100)}
	headerAll := *orig[2].DeepCopy()
	headerAll.Matches = []gatewayv1.HTTPRouteMatch{withHeader(orig[2].Matches[0], "X-Canary", "always")}
	headerAll.BackendRefs = []gatewayv1.HTTPBackendRef{backendRef("web-canary", 100)}
	assert.Equal(t, []gatewayv1.HTTPRouteRule{headerAPI, weighted(orig[0], 70, 30), orig[1], headerAll, weighted(orig[2], 70, 30)},
		getRoute(t, c).Spec.Rules, "a header rule before each rule of the Service, its filters kept, its name dropped")
	require.NoError(t, route(30, header("X-Canary", "always")))
	assert.Empty(t, rec.reset(), "a second Route writes nothing")

	require.NoError(t, route(100))
	assert.Equal(t, []string{"update *v1.HTTPRoute web"}, rec.reset())
	assert.Equal(t, []gatewayv1.HTTPRouteRule{weighted(orig[0], 0, 100), orig[1], weighted(orig[2], 0, 100)}, getRoute(t, c).Spec.Rules)
	require.NoError(t, route(100))
	assert.Empty(t, rec.reset(), "a second Route writes nothing")
	assert.Equal(t, pinned(stableRev), getService(t, c, "web").Spec.Selector, "the stable Service stays on the stable pods")
}

func TestGatewayRuleWithoutMatchesGetsTheDefaultPath(t *testing.T) {
	ctx := context.Background()
	bare := testRoute()
	bare.Spec.Rules = []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
	}}}}}
	c, _ := newClient(t, nil, testService(), bare)
	require.NoError(t, New(c, target(gatewayRouting())).Route(ctx, 10, []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{
		{Type: "RegularExpression", Name: "X-User", Value: "^a"},
	}}}))
	rules := getRoute(t, c).Spec.Rules
	require.Len(t, rules, 2)
	assert.Equal(t, []gatewayv1.HTTPRouteMatch{{
		Path:    pathPrefix("/"),
		Headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "X-User", Value: "^a"}},
	}}, rules[0].Matches, "what the API server defaults a rule without matches to, so that the next Route finds it unchanged")
	assert.Equal(t, "web-canary", string(rules[0].BackendRefs[0].Name))
	assert.Nil(t, rules[0].BackendRefs[0].Kind, "the user's backendRef is copied as written")
}

func TestGatewayFinishRestoresExactly(t *testing.T) {
	for _, tt := range []struct {
		name   string
		winner string
		writes []string
	}{
		{name: "completion pins the winner before the weights go back", winner: canaryRev,
			writes: []string{"update *v1.Service web", "update *v1.HTTPRoute web"}},
		{name: "abort puts the weights back first; the Service is already on stable", winner: stableRev,
			writes: []string{"update *v1.HTTPRoute web"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, rec := newClient(t, nil, testService(), testRoute())
			svcBefore, routeBefore := getService(t, c, "web"), getRoute(t, c)
			r := func() Router { return New(c, target(gatewayRouting())) }
			require.NoError(t, r().Route(ctx, 30, []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}))
			rec.reset()

			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Equal(t, tt.writes, rec.reset())
			routeAfter := getRoute(t, c)
			assert.Equal(t, routeBefore.Spec, routeAfter.Spec, "the user's rules exactly")
			assert.Equal(t, routeBefore.Annotations, routeAfter.Annotations)
			assert.Equal(t, pinned(tt.winner), getService(t, c, "web").Spec.Selector)
			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Empty(t, rec.reset(), "a second Finish writes nothing")

			require.NoError(t, r().Unpin(ctx))
			svcAfter := getService(t, c, "web")
			assert.Equal(t, svcBefore.Spec, svcAfter.Spec)
			assert.Equal(t, svcBefore.Annotations, svcAfter.Annotations)
			assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"))
			rec.reset()
			require.NoError(t, r().Unpin(ctx))
			assert.Empty(t, rec.reset(), "a second Unpin writes nothing")
		})
	}
}

func TestGatewayRouteRetriesAConflict(t *testing.T) {
	ctx := context.Background()
	conflicted := false
	extra := &interceptor.Funcs{
		Update: func(ctx context.Context, inner client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if _, ok := obj.(*gatewayv1.HTTPRoute); ok && !conflicted {
				conflicted = true
				return apierrors.NewConflict(schema.GroupResource{Group: gatewayv1.GroupName, Resource: "httproutes"}, obj.GetName(), errors.New("modified"))
			}
			return inner.Update(ctx, obj, opts...)
		},
	}
	c, rec := newClient(t, extra, testService(), testRoute())
	require.NoError(t, New(c, target(gatewayRouting())).Route(ctx, 20, nil))
	assert.Equal(t, []string{"create *v1.Service web-canary", "update *v1.Service web", "update *v1.HTTPRoute web", "update *v1.HTTPRoute web"}, rec.reset())
	assert.Equal(t, ptr.To[int32](20), getRoute(t, c).Spec.Rules[0].BackendRefs[1].Weight)
}

func TestGatewayValidate(t *testing.T) {
	mutate := func(f func(*gatewayv1.HTTPRoute)) *gatewayv1.HTTPRoute {
		r := testRoute()
		f(r)
		return r
	}
	manyRules := mutate(func(r *gatewayv1.HTTPRoute) {
		for i := range 6 {
			r.Spec.Rules = append(r.Spec.Rules, gatewayv1.HTTPRouteRule{
				Matches:     []gatewayv1.HTTPRouteMatch{{Path: pathPrefix(fmt.Sprintf("/p%d", i))}},
				BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("web", 1)},
			})
		}
	})
	tests := []struct {
		name    string
		objs    []client.Object
		steps   []v1alpha1.RolloutStep
		field   string
		message string
	}{
		{name: "weights and headers", objs: []client.Object{testService(), testRoute()},
			steps: []v1alpha1.RolloutStep{
				{Traffic: traffic("5%"), Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always"), header("X-Beta", "1")}},
				{Traffic: traffic("50%")},
			}},
		{name: "missing HTTPRoute", objs: []client.Object{testService()},
			field: routingField + ".gateway.httpRouteName", message: `HTTPRoute "web" not found in namespace "shop"`},
		{name: "no backendRef to the Service", objs: []client.Object{testService(), mutate(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules = r.Spec.Rules[1:2]
		})}, field: routingField + ".gateway.httpRouteName", message: `has no rule with a backendRef to the Service "web"`},
		{name: "a backendRef to the Service in another namespace", objs: []client.Object{testService(), mutate(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules = r.Spec.Rules[:1]
			r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gatewayv1.Namespace("elsewhere"))
		})}, field: routingField + ".gateway.httpRouteName", message: "has no rule with a backendRef"},
		{name: "the Service shares a rule", objs: []client.Object{testService(), mutate(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[2].BackendRefs = append(r.Spec.Rules[2].BackendRefs, backendRef("legacy", 1))
		})}, field: routingField + ".gateway.httpRouteName", message: "rule 2: a rule sends to the Service \"web\" and to 1 other backendRefs"},
		{name: "a match already on the header", objs: []client.Object{testService(), mutate(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].Matches[1] = withHeader(r.Spec.Rules[0].Matches[1], "x-canary", "no")
		})}, steps: []v1alpha1.RolloutStep{{}, {Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}},
			field: steps + "[1].matches", message: `rule 0: match 1 already matches header "X-Canary"`},
		{name: "too many rules", objs: []client.Object{testService(), manyRules},
			steps: []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}},
			field: steps + "[0].matches", message: "would need 17 rules, more than the 16"},
		{name: "two header matches on a rule that rewrites its prefix", objs: []client.Object{testService(), mutate(func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[2].Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
				Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/")},
			}}}
		})}, steps: []v1alpha1.RolloutStep{
			{Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}},
			{Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always"), header("X-Beta", "1")}},
		}, field: steps + "[1].matches", message: "rule 2: the rule rewrites its matched path prefix, which allows exactly one match, and the header rule would need 2"},
		{name: "an unknown header type", objs: []client.Object{testService(), testRoute()},
			steps: []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Type: "Prefix", Name: "X", Value: "y"}}}}}},
			field: steps + "[0].matches", message: `type "Prefix"`},
		{name: "a header twice in one match", objs: []client.Object{testService(), testRoute()},
			steps: []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Name: "X", Value: "1"}, {Name: "x", Value: "2"}}}}}},
			field: steps + "[0].matches", message: `matches header "x" twice`},
		{name: "corrupt saved rules", objs: []client.Object{testService(), mutate(func(r *gatewayv1.HTTPRoute) {
			r.Annotations[AnnotationOriginalRules] = "[{"
		})}, field: routingField + ".gateway.httpRouteName", message: "is not JSON HTTPRoute rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newClient(t, nil, tt.objs...)
			err := New(c, target(gatewayRouting())).Validate(context.Background(), tt.steps, stepsPath)
			assert.Empty(t, rec.reset(), "Validate changes nothing")
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *field.Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			assert.Contains(t, fe.Error(), tt.message)
		})
	}
}

func TestGatewayValidateLooksAtTheSavedRulesMidRelease(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, nil, testService(), testRoute())
	r := New(c, target(gatewayRouting()))
	require.NoError(t, r.Route(ctx, 30, []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}))
	// The live rules now carry X-Canary and two backendRefs; the user's do not.
	require.NoError(t, r.Validate(ctx, []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}}, stepsPath))
}
