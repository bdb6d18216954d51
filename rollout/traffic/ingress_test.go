package traffic

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestIngressRouteWeightsAndHeaders(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testIngress())
	userBefore := getIngress(t, c, "web")
	route := func(w int32, m ...v1alpha1.HTTPRouteMatch) error {
		return New(c, target(ingressRouting())).Route(ctx, w, m)
	}

	require.NoError(t, route(0))
	assert.Equal(t, []string{"create *v1.Service web-canary", "update *v1.Service web", "create *v1.Ingress web-canary"}, rec.reset(),
		"the canary Service exists and the stable one is pinned before the canary Ingress")
	assert.Equal(t, pinned(stableRev), getService(t, c, "web").Spec.Selector)
	canary := getIngress(t, c, "web-canary")
	assert.Equal(t, map[string]string{LabelRollout: "web"}, canary.Labels)
	require.Len(t, canary.OwnerReferences, 1)
	assert.True(t, metav1.IsControlledBy(canary, testRollout()))
	assert.Equal(t, networkingv1.IngressSpec{
		IngressClassName: ptr.To("nginx"),
		Rules: []networkingv1.IngressRule{{Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: prefix(), Backend: backend("web-canary", 80)}}},
		}}},
	}, canary.Spec, "only the paths to the Service, pointed at the canary Service")
	assert.Equal(t, map[string]string{
		"nginx.ingress.kubernetes.io/canary":        "true",
		"nginx.ingress.kubernetes.io/canary-weight": "0",
	}, canary.Annotations)

	steps := []struct {
		name    string
		weight  int32
		matches []v1alpha1.HTTPRouteMatch
		want    map[string]string
	}{
		{name: "exact header", weight: 30, matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}, want: map[string]string{
			"nginx.ingress.kubernetes.io/canary":                 "true",
			"nginx.ingress.kubernetes.io/canary-weight":          "30",
			"nginx.ingress.kubernetes.io/canary-by-header":       "X-Canary",
			"nginx.ingress.kubernetes.io/canary-by-header-value": "always",
		}},
		{name: "regular expression", weight: 30, matches: []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{
			{Type: "RegularExpression", Name: "X-User", Value: "^(alice|bob)$"},
		}}}, want: map[string]string{
			"nginx.ingress.kubernetes.io/canary":                   "true",
			"nginx.ingress.kubernetes.io/canary-weight":            "30",
			"nginx.ingress.kubernetes.io/canary-by-header":         "X-User",
			"nginx.ingress.kubernetes.io/canary-by-header-pattern": "^(alice|bob)$",
		}},
		{name: "header dropped", weight: 100, want: map[string]string{
			"nginx.ingress.kubernetes.io/canary":        "true",
			"nginx.ingress.kubernetes.io/canary-weight": "100",
		}},
	}
	for _, s := range steps {
		require.NoError(t, route(s.weight, s.matches...), s.name)
		assert.Equal(t, []string{"update *v1.Ingress web-canary"}, rec.reset(), s.name)
		assert.Equal(t, s.want, getIngress(t, c, "web-canary").Annotations, s.name)
		require.NoError(t, route(s.weight, s.matches...), s.name)
		assert.Empty(t, rec.reset(), "%s: a second Route writes nothing", s.name)
	}
	assert.Equal(t, pinned(stableRev), getService(t, c, "web").Spec.Selector, "the stable Service stays on the stable pods")
	assert.Equal(t, userBefore, getIngress(t, c, "web"), "the user's Ingress is never modified")
}

func TestIngressCanaryFollowsTheUsersIngress(t *testing.T) {
	ctx := context.Background()
	legacy := testIngress()
	legacy.Spec.IngressClassName = nil
	legacy.Annotations[legacyIngressClass] = "nginx-internal"
	c, _ := newClient(t, nil, testService(), legacy)
	r := New(c, target(ingressRouting()))
	require.NoError(t, r.Route(ctx, 10, nil))
	canary := getIngress(t, c, "web-canary")
	assert.Nil(t, canary.Spec.IngressClassName)
	assert.Equal(t, "nginx-internal", canary.Annotations[legacyIngressClass], "ingress-nginx pairs a canary only within one class")

	user := getIngress(t, c, "web")
	user.Spec.Rules[1].HTTP.Paths[0].Backend = backend("web", 80)
	require.NoError(t, c.Update(ctx, user))
	require.NoError(t, r.Route(ctx, 10, nil))
	assert.Len(t, getIngress(t, c, "web-canary").Spec.Rules, 2, "a path the user added mid-release gets its canary")

	// Someone edits the generated Ingress: Route puts it back and keeps foreign annotations.
	canary = getIngress(t, c, "web-canary")
	canary.Annotations["nginx.ingress.kubernetes.io/canary-weight"] = "90"
	canary.Annotations["example.com/note"] = "kept"
	require.NoError(t, c.Update(ctx, canary))
	require.NoError(t, r.Route(ctx, 10, nil))
	canary = getIngress(t, c, "web-canary")
	assert.Equal(t, "10", canary.Annotations["nginx.ingress.kubernetes.io/canary-weight"])
	assert.Equal(t, "kept", canary.Annotations["example.com/note"])
}

func TestIngressFinishOrder(t *testing.T) {
	for _, tt := range []struct {
		name   string
		winner string
		writes []string
	}{
		{name: "completion pins the winner before the canary Ingress goes", winner: canaryRev,
			writes: []string{"update *v1.Service web", "delete *v1.Ingress web-canary"}},
		{name: "abort drops the canary Ingress first; the Service is already on stable", winner: stableRev,
			writes: []string{"delete *v1.Ingress web-canary"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, rec := newClient(t, nil, testService(), testIngress())
			svcBefore, ingBefore := getService(t, c, "web"), getIngress(t, c, "web")
			r := func() Router { return New(c, target(ingressRouting())) }
			require.NoError(t, r().Route(ctx, 100, nil))
			rec.reset()

			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Equal(t, tt.writes, rec.reset())
			assert.False(t, exists(t, c, &networkingv1.Ingress{}, "web-canary"))
			assert.Equal(t, pinned(tt.winner), getService(t, c, "web").Spec.Selector)
			assert.True(t, exists(t, c, &corev1.Service{}, "web-canary"), "the canary Service stays until Unpin")
			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Empty(t, rec.reset(), "a second Finish writes nothing")

			require.NoError(t, r().Unpin(ctx))
			svcAfter := getService(t, c, "web")
			assert.Equal(t, svcBefore.Spec, svcAfter.Spec)
			assert.Equal(t, svcBefore.Annotations, svcAfter.Annotations)
			assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"))
			assert.Equal(t, ingBefore, getIngress(t, c, "web"))
			rec.reset()
			require.NoError(t, r().Unpin(ctx))
			assert.Empty(t, rec.reset(), "a second Unpin writes nothing")
		})
	}
}

func TestIngressUnpinWithoutFinishRemovesTheCanaryIngressFirst(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testIngress())
	r := New(c, target(ingressRouting()))
	require.NoError(t, r.Route(ctx, 50, nil))
	rec.reset()
	require.NoError(t, r.Unpin(ctx))
	assert.Equal(t, []string{"delete *v1.Ingress web-canary", "update *v1.Service web", "delete *v1.Service web-canary"}, rec.reset(),
		"no Ingress is left pointing at a deleted Service")
}

func TestIngressValidate(t *testing.T) {
	noBackend := testIngress()
	noBackend.Spec.Rules = noBackend.Spec.Rules[1:]
	theirs := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-canary"}}
	two := []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}}}
	tests := []struct {
		name    string
		objs    []client.Object
		routing func(*v1alpha1.TrafficRouting)
		steps   []v1alpha1.RolloutStep
		field   string
		message string
	}{
		{name: "weights and one header", objs: []client.Object{testService(), testIngress()},
			steps: []v1alpha1.RolloutStep{{Traffic: traffic("5%"), Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}, {Traffic: traffic("50%")}}},
		{name: "two headers in one match", objs: []client.Object{testService(), testIngress()},
			steps: []v1alpha1.RolloutStep{{Traffic: traffic("5%")}, {Matches: two}},
			field: steps + "[1].matches", message: "ingress-nginx routes by one header (canary-by-header), not 2"},
		{name: "two matches", objs: []client.Object{testService(), testIngress()},
			steps: []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{header("X-A", "1"), header("X-B", "2")}}},
			field: steps + "[0].matches", message: "not 2"},
		{name: "invalid header name", objs: []client.Object{testService(), testIngress()},
			steps: []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{header("X Canary", "1")}}},
			field: steps + "[0].matches", message: `"X Canary" is not a valid header name`},
		{name: "missing Ingress", objs: []client.Object{testService()},
			field: routingField + ".ingress.name", message: `Ingress "web" not found in namespace "shop"`},
		{name: "Ingress without the Service", objs: []client.Object{testService(), noBackend},
			field: routingField + ".ingress.name", message: `has no rule whose backend is the Service "web"`},
		{name: "canary Ingress name taken", objs: []client.Object{testService(), testIngress(), theirs},
			field: routingField + ".ingress.name", message: `Ingress "web-canary" exists and was not generated by this Rollout`},
		{name: "another class type", objs: []client.Object{testService(), testIngress()},
			routing: func(r *v1alpha1.TrafficRouting) { r.Ingress.ClassType = "traefik" },
			field:   routingField + ".ingress.classType", message: `supported values: "nginx"`},
		{name: "missing Service", objs: []client.Object{testIngress()},
			field: routingField + ".service", message: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newClient(t, nil, tt.objs...)
			tg := target(ingressRouting())
			if tt.routing != nil {
				tt.routing(&tg.Routing)
			}
			err := New(c, tg).Validate(context.Background(), tt.steps, stepsPath)
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

func TestIngressRouteRefusesTwoHeaders(t *testing.T) {
	c, rec := newClient(t, nil, testService(), testIngress())
	err := New(c, target(ingressRouting())).Route(context.Background(), 10, []v1alpha1.HTTPRouteMatch{header("X-A", "1"), header("X-B", "2")})
	require.ErrorContains(t, err, "one header")
	assert.Empty(t, rec.reset())
}
