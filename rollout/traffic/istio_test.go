package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// testVirtualService has a named route for the Service with a match and settings of its
// own, a route to another Service, and a catch-all route for the Service by its full name.
func testVirtualService() *unstructured.Unstructured {
	return istioObject(VirtualServiceGVK, "web", `{
		"hosts": ["shop.example.com"], "gateways": ["public"],
		"http": [
			{"name": "api", "match": [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/v2"}}],
			 "retries": {"attempts": 3}, "timeout": "5s",
			 "route": [{"destination": {"host": "web", "port": {"number": 80}}}]},
			{"name": "static", "route": [{"destination": {"host": "static"}}]},
			{"route": [{"destination": {"host": "web.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 100}]}
		]}`)
}

// testDestinationRule has the Argo-style stable and canary subsets of the Service.
func testDestinationRule() *unstructured.Unstructured {
	return istioObject(DestinationRuleGVK, "web", `{
		"host": "web", "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}},
		"subsets": [{"name": "stable", "labels": {"app": "web"}}, {"name": "canary", "labels": {"app": "web"}}]}`)
}

// testSubsetVirtualService routes to the subsets, the canary at weight 0.
func testSubsetVirtualService() *unstructured.Unstructured {
	return istioObject(VirtualServiceGVK, "web", `{
		"hosts": ["web"],
		"http": [{"name": "primary", "route": [
			{"destination": {"host": "web", "subset": "stable"}, "weight": 100},
			{"destination": {"host": "web", "subset": "canary"}, "weight": 0}]}]}`)
}

func istioObject(gvk schema.GroupVersionKind, name, spec string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetAnnotations(map[string]string{"team": "shop"})
	var s map[string]any
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		panic(err)
	}
	u.Object["spec"] = normalize(s)
	return u
}

func istioRouting(routes ...string) v1alpha1.TrafficRouting {
	return v1alpha1.TrafficRouting{Service: "web", Istio: &v1alpha1.IstioTrafficRouting{
		VirtualService: v1alpha1.IstioVirtualService{Name: "web", Routes: routes},
	}}
}

func subsetRouting() v1alpha1.TrafficRouting {
	r := istioRouting()
	r.Istio.DestinationRule = &v1alpha1.IstioDestinationRule{Name: "web", StableSubsetName: "stable", CanarySubsetName: "canary"}
	return r
}

func getIstio(t *testing.T, c client.Client, gvk schema.GroupVersionKind) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, u))
	return u
}

func httpOf(t *testing.T, c client.Client) []any {
	t.Helper()
	http, _, err := unstructured.NestedSlice(getIstio(t, c, VirtualServiceGVK).Object, "spec", "http")
	require.NoError(t, err)
	return http
}

// js decodes JSON the way unstructured objects hold it.
func js(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return normalize(v)
}

func TestIstioRouteWeightsAndHeaderRoutes(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testVirtualService())
	orig := httpOf(t, c)
	route := func(w int32, m ...v1alpha1.HTTPRouteMatch) error {
		return New(c, target(istioRouting())).Route(ctx, w, m)
	}

	require.NoError(t, route(0))
	assert.Equal(t, []string{"create *v1.Service web-canary", "update *v1.Service web", "update *unstructured.Unstructured web"}, rec.reset(),
		"the canary Service exists and the stable one is pinned before weights move")
	assert.Equal(t, js(t, `[
		{"name": "api", "match": [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/v2"}}], "retries": {"attempts": 3}, "timeout": "5s",
		 "route": [{"destination": {"host": "web", "port": {"number": 80}}, "weight": 100},
		           {"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 0}]},
		{"name": "static", "route": [{"destination": {"host": "static"}}]},
		{"route": [{"destination": {"host": "web.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 100},
		           {"destination": {"host": "web-canary.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 0}]}]`), httpOf(t, c),
		"every route of the Service splits, its settings kept; the canary host is written as the stable one is")
	vs := getIstio(t, c, VirtualServiceGVK)
	assert.Equal(t, "shop", vs.GetAnnotations()["team"])
	assert.Equal(t, orig, js(t, vs.GetAnnotations()[AnnotationOriginalHTTP]), "the user's routes are saved with the first change")

	require.NoError(t, route(30, header("X-Canary", "always")))
	assert.Equal(t, []string{"update *unstructured.Unstructured web"}, rec.reset())
	http := httpOf(t, c)
	require.Len(t, http, 5)
	assert.Equal(t, js(t, `{"name": "api-promgate-canary", "retries": {"attempts": 3}, "timeout": "5s",
		"match": [{"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "always"}}}, {"uri": {"prefix": "/v2"}, "headers": {"x-canary": {"exact": "always"}}}],
		"route": [{"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 100}]}`), http[0],
		"a header route before each route of the Service, its matches extended, header names lower-cased as Istio wants them")
	assert.Equal(t, js(t, `{"match": [{"headers": {"x-canary": {"exact": "always"}}}],
		"route": [{"destination": {"host": "web-canary.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 100}]}`), http[3],
		"a route without matches gets a match of the headers alone")
	assert.Equal(t, int64(70), http[1].(map[string]any)["route"].([]any)[0].(map[string]any)["weight"])
	require.NoError(t, route(30, header("X-Canary", "always")))
	assert.Empty(t, rec.reset(), "a second Route writes nothing")

	require.NoError(t, route(100))
	assert.Equal(t, []string{"update *unstructured.Unstructured web"}, rec.reset())
	assert.Len(t, httpOf(t, c), 3)
	assert.Equal(t, pinned(stableRev), getService(t, c, "web").Spec.Selector, "the stable Service stays on the stable pods")
}

func TestIstioNamedRoutesOnly(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, nil, testService(), testVirtualService())
	orig := httpOf(t, c)
	require.NoError(t, New(c, target(istioRouting("api"))).Route(ctx, 10, nil))
	http := httpOf(t, c)
	assert.Len(t, http[0].(map[string]any)["route"], 2, "the named route splits")
	assert.Equal(t, orig[2], http[2], "a route the spec does not name is left as it is")
}

func TestIstioFinishRestoresExactly(t *testing.T) {
	for _, tt := range []struct {
		name   string
		winner string
		writes []string
	}{
		{name: "completion pins the winner before the routes go back", winner: canaryRev,
			writes: []string{"update *v1.Service web", "update *unstructured.Unstructured web"}},
		{name: "abort puts the routes back first; the Service is already on stable", winner: stableRev,
			writes: []string{"update *unstructured.Unstructured web"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, rec := newClient(t, nil, testService(), testVirtualService())
			before := getIstio(t, c, VirtualServiceGVK)
			r := func() Router { return New(c, target(istioRouting())) }
			require.NoError(t, r().Route(ctx, 30, []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}))
			rec.reset()

			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Equal(t, tt.writes, rec.reset())
			after := getIstio(t, c, VirtualServiceGVK)
			assert.Equal(t, before.Object["spec"], after.Object["spec"], "the user's routes exactly")
			assert.Equal(t, before.GetAnnotations(), after.GetAnnotations())
			assert.Equal(t, pinned(tt.winner), getService(t, c, "web").Spec.Selector)
			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Empty(t, rec.reset(), "Finish again writes nothing")

			require.NoError(t, r().Unpin(ctx))
			assert.Equal(t, testService().Spec.Selector, getService(t, c, "web").Spec.Selector)
			assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"))
		})
	}
}

func TestIstioSubsets(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService(), testSubsetVirtualService(), testDestinationRule())
	beforeDR := getIstio(t, c, DestinationRuleGVK)
	beforeVS := getIstio(t, c, VirtualServiceGVK)
	r := func() Router { return New(c, target(subsetRouting())) }
	subsets := func() []any {
		s, _, err := unstructured.NestedSlice(getIstio(t, c, DestinationRuleGVK).Object, "spec", "subsets")
		require.NoError(t, err)
		return s
	}
	pinnedSubsets := func(stable, canary string) any {
		return js(t, `[{"name": "stable", "labels": {"app": "web", "pod-template-hash": "`+stable+`"}},
			{"name": "canary", "labels": {"app": "web", "pod-template-hash": "`+canary+`"}}]`)
	}

	require.NoError(t, r().PinStable(ctx))
	assert.Equal(t, []string{"update *unstructured.Unstructured web"}, rec.reset(), "the DestinationRule alone: the Service is left as it is")
	assert.Equal(t, pinnedSubsets(stableRev, canaryRev), subsets())

	require.NoError(t, r().Route(ctx, 20, []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}))
	assert.Equal(t, []string{"update *unstructured.Unstructured web"}, rec.reset(), "only the VirtualService changes")
	assert.Equal(t, js(t, `[
		{"name": "primary-promgate-canary", "match": [{"headers": {"x-canary": {"exact": "always"}}}],
		 "route": [{"destination": {"host": "web", "subset": "canary"}, "weight": 100}]},
		{"name": "primary", "route": [{"destination": {"host": "web", "subset": "stable"}, "weight": 80},
		                             {"destination": {"host": "web", "subset": "canary"}, "weight": 20}]}]`), httpOf(t, c))
	assert.Equal(t, testService().Spec.Selector, getService(t, c, "web").Spec.Selector, "no pin: the subsets select the revisions")
	assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"), "no canary Service")

	require.NoError(t, r().Finish(ctx, canaryRev))
	assert.Equal(t, pinnedSubsets(canaryRev, canaryRev), subsets(), "both subsets on the winner until the old pods are gone")
	assert.Equal(t, beforeVS.Object["spec"], getIstio(t, c, VirtualServiceGVK).Object["spec"], "the user's routes exactly")
	require.NoError(t, r().Unpin(ctx))
	afterDR := getIstio(t, c, DestinationRuleGVK)
	assert.Equal(t, beforeDR.Object["spec"], afterDR.Object["spec"], "the user's subsets exactly")
	assert.Equal(t, beforeDR.GetAnnotations(), afterDR.GetAnnotations())
}

func TestIstioRouteWaitsForTheCanaryEndpoints(t *testing.T) {
	ctx := context.Background()
	for name, routing := range map[string]v1alpha1.TrafficRouting{"services": istioRouting(), "subsets": subsetRouting()} {
		t.Run(name, func(t *testing.T) {
			vs := testVirtualService()
			if name == "subsets" {
				vs = testSubsetVirtualService()
			}
			c, _ := newClient(t, nil, testService(), vs, testDestinationRule())
			before := httpOf(t, c)
			tg := target(routing)
			tg.Endpoints = &fakeEndpoints{holds: map[string]string{"web": stableRev, "web-canary": ""}}
			var nr *NotReadyError
			require.ErrorAs(t, New(c, tg).Route(ctx, 10, nil), &nr)
			assert.Equal(t, before, httpOf(t, c), "nothing routed to pods that cannot answer")
			require.NoError(t, New(c, tg).Route(ctx, 0, nil), "sending the canary nothing never waits")
		})
	}
}

func TestIstioValidate(t *testing.T) {
	ctx := context.Background()
	vsPath := routingPath.Child("istio", "virtualService")
	mixed := testVirtualService()
	http, _, _ := unstructured.NestedSlice(mixed.Object, "spec", "http")
	http[0].(map[string]any)["route"] = js(t, `[{"destination": {"host": "web"}, "weight": 90}, {"destination": {"host": "legacy"}, "weight": 10}]`)
	require.NoError(t, unstructured.SetNestedSlice(mixed.Object, http, "spec", "http"))
	noCanary := testDestinationRule()
	require.NoError(t, unstructured.SetNestedSlice(noCanary.Object, js(t, `[{"name": "stable", "labels": {"app": "web"}}]`).([]any), "spec", "subsets"))

	for _, tt := range []struct {
		name    string
		routing v1alpha1.TrafficRouting
		objs    []client.Object
		steps   []v1alpha1.RolloutStep
		typ     field.ErrorType
		field   string
		detail  string
	}{
		{"no VirtualService", istioRouting(), []client.Object{testService()}, nil,
			field.ErrorTypeNotFound, vsPath.Child("name").String(), `VirtualService "web" not found in namespace "shop"`},
		{"a route name it does not have", istioRouting("api", "checkout"), []client.Object{testService(), testVirtualService()}, nil,
			field.ErrorTypeNotFound, vsPath.Child("routes").Index(1).String(), `VirtualService "web" has no HTTP route named "checkout"`},
		{"a named route that is not the Service's", istioRouting("static"), []client.Object{testService(), testVirtualService()}, nil,
			field.ErrorTypeInvalid, vsPath.Child("routes").Index(0).String(), `the HTTP route "static" of VirtualService "web" has no destination to the Service "web"`},
		{"a route split with another Service", istioRouting(), []client.Object{testService(), mixed}, nil,
			field.ErrorTypeInvalid, vsPath.Child("name").String(), `VirtualService "web" http[0]: the route sends to the Service "web" and to 1 other destinations; give the Service a route of its own`},
		{"no DestinationRule", subsetRouting(), []client.Object{testService(), testSubsetVirtualService()}, nil,
			field.ErrorTypeNotFound, routingPath.Child("istio", "destinationRule", "name").String(), `DestinationRule "web" not found in namespace "shop"`},
		{"a subset missing", subsetRouting(), []client.Object{testService(), testSubsetVirtualService(), noCanary}, nil,
			field.ErrorTypeInvalid, routingPath.Child("istio", "destinationRule", "name").String(), `the DestinationRule "web" has no subset "canary"`},
		{"a step header the route already matches", istioRouting(), []client.Object{testService(), istioObject(VirtualServiceGVK, "web",
			`{"http": [{"match": [{"headers": {"x-canary": {"exact": "no"}}}], "route": [{"destination": {"host": "web"}}]}]}`)},
			[]v1alpha1.RolloutStep{{Traffic: traffic("10%")}, {Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}},
			field.ErrorTypeInvalid, stepsPath.Index(1).Child("matches").String(), `match[0] already matches header "x-canary"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, nil, tt.objs...)
			err := New(c, target(tt.routing)).Validate(ctx, tt.steps, stepsPath)
			var fe *field.Error
			require.True(t, errors.As(err, &fe), "a *field.Error: %v", err)
			assert.Equal(t, tt.typ, fe.Type)
			assert.Equal(t, tt.field, fe.Field)
			assert.Contains(t, err.Error(), tt.detail)
		})
	}

	c, rec := newClient(t, nil, testService(), testVirtualService())
	require.NoError(t, New(c, target(istioRouting())).Validate(ctx, []v1alpha1.RolloutStep{{Traffic: traffic("25%"), Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}}, stepsPath))
	assert.Empty(t, rec.reset(), "Validate changes nothing")
}
