package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
)

// cluster is one routing's objects in a namespace of its own on the real API server, and
// the user's objects as the server stored them before any Route.
type cluster struct {
	c      client.Client
	rec    *recorder
	ns     string
	target Target
	svc    *corev1.Service
	ing    *networkingv1.Ingress
	route  *gatewayv1.HTTPRoute
}

func (k *cluster) router() Router { return New(k.c, k.target) }

func (k *cluster) get(t *testing.T, obj client.Object, name string) bool {
	t.Helper()
	err := k.c.Get(context.Background(), client.ObjectKey{Namespace: k.ns, Name: name}, obj)
	require.NoError(t, client.IgnoreNotFound(err), "getting %s", name)
	return err == nil
}

// newCluster creates the namespace, a Rollout, the Service and the routing's Ingress or
// HTTPRoute, with the same shapes as the fake-client tests.
func newCluster(t *testing.T, cp *testbed.ControlPlane, name string, routing v1alpha1.TrafficRouting) *cluster {
	t.Helper()
	ctx := context.Background()
	c := cp.Client
	// The server does not bump the resource version of an update that changes nothing
	// once defaulted, so only counting the writes proves that Route made none.
	watching, err := client.NewWithWatch(cp.Config, client.Options{Scheme: testbed.Scheme()})
	require.NoError(t, err)
	rec := &recorder{}
	k := &cluster{c: interceptor.NewClient(watching, rec.funcs(nil)), rec: rec, ns: name}
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))

	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "web"},
		Spec: v1alpha1.RolloutSpec{
			WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
				Steps:           []v1alpha1.RolloutStep{{Traffic: ptr.To("0%")}},
				TrafficRoutings: []v1alpha1.TrafficRouting{routing},
			}},
		},
	}
	require.NoError(t, c.Create(ctx, ro))
	k.target = Target{Rollout: ro, Routing: routing, Field: routingPath, StableRevision: stableRev, CanaryRevision: canaryRev,
		Endpoints: SliceEndpoints{Reader: c}}
	// Two pods of each revision, as the Deployment controller would label them; this
	// server runs no endpointslice controller, so the test writes the slices itself.
	for _, rev := range []string{stableRev, canaryRev} {
		for i := range 2 {
			require.NoError(t, c.Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: fmt.Sprintf("web-%s-%d", rev, i), Labels: pinned(rev)},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			}))
		}
	}

	// Let the server allocate the cluster IP and node ports.
	svc := testService()
	svc.Namespace, svc.Spec.ClusterIP, svc.Spec.ClusterIPs = name, "", nil
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].NodePort = 0
	}
	require.NoError(t, c.Create(ctx, svc))
	k.svc = &corev1.Service{}
	require.True(t, k.get(t, k.svc, "web"))
	require.NotZero(t, k.svc.Spec.Ports[0].NodePort)

	if routing.Ingress != nil {
		ing := testIngress()
		ing.Namespace = name
		require.NoError(t, c.Create(ctx, ing))
		k.ing = &networkingv1.Ingress{}
		require.True(t, k.get(t, k.ing, "web"))
	}
	if routing.Gateway != nil {
		route := testRoute()
		route.Namespace = name
		// A rule as users write it, without matches, weight, group or kind: the server
		// defaults them, and the next Route must still find nothing to change.
		route.Spec.Rules = append(route.Spec.Rules, gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
		}}}})
		require.NoError(t, c.Create(ctx, route))
		k.route = &gatewayv1.HTTPRoute{}
		require.True(t, k.get(t, k.route, "web"))
	}
	return k
}

// slices makes Service svc's EndpointSlice hold the pods of revs, ready, as the
// endpointslice controller would once it caught up with a selector.
func (k *cluster) slices(t *testing.T, svc string, revs ...string) {
	t.Helper()
	ctx := context.Background()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: k.ns, Name: svc + "-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, rev := range revs {
		for j := range 2 {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.0.%d.%d", i, j+1)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: k.ns, Name: fmt.Sprintf("web-%s-%d", rev, j)},
			})
		}
	}
	var got discoveryv1.EndpointSlice
	if k.get(t, &got, slice.Name) {
		got.Endpoints = slice.Endpoints
		require.NoError(t, k.c.Update(ctx, &got))
		return
	}
	require.NoError(t, k.c.Create(ctx, slice))
}

// expectRouted checks every object at weight, with or without the X-Canary header match.
func (k *cluster) expectRouted(t *testing.T, weight int32, withHeader bool) {
	t.Helper()
	var svc, canarySvc corev1.Service
	require.True(t, k.get(t, &svc, "web"))
	wantPin := stableRev
	if k.route == nil && k.ing == nil && weight == 100 {
		wantPin = canaryRev
	}
	assert.Equal(t, pinned(wantPin), svc.Spec.Selector, "stable Service pin")
	assert.JSONEq(t, `{"app":"web","tier":"front"}`, svc.Annotations[AnnotationOriginalSelector])

	require.True(t, k.get(t, &canarySvc, "web-canary"), "the canary Service exists")
	assert.Equal(t, pinned(canaryRev), canarySvc.Spec.Selector)
	assert.Equal(t, corev1.ServiceTypeClusterIP, canarySvc.Spec.Type)
	assert.NotEqual(t, k.svc.Spec.ClusterIP, canarySvc.Spec.ClusterIP)
	assert.True(t, metav1.IsControlledBy(&canarySvc, k.target.Rollout))
	assert.Equal(t, "web", canarySvc.Labels[LabelRollout])
	for i, p := range canarySvc.Spec.Ports {
		want := k.svc.Spec.Ports[i]
		want.NodePort = 0
		assert.Equal(t, want, p)
	}

	if k.ing != nil {
		var user, canary networkingv1.Ingress
		require.True(t, k.get(t, &user, "web"))
		assert.Equal(t, k.ing.ResourceVersion, user.ResourceVersion, "the user's Ingress is never written")
		require.True(t, k.get(t, &canary, "web-canary"))
		want := map[string]string{
			"nginx.ingress.kubernetes.io/canary":        "true",
			"nginx.ingress.kubernetes.io/canary-weight": strconv.Itoa(int(weight)),
		}
		if withHeader {
			want["nginx.ingress.kubernetes.io/canary-by-header"] = "X-Canary"
			want["nginx.ingress.kubernetes.io/canary-by-header-value"] = "always"
		}
		assert.Equal(t, want, canary.Annotations)
		assert.Equal(t, ptr.To("nginx"), canary.Spec.IngressClassName)
		require.Len(t, canary.Spec.Rules, 1)
		assert.Equal(t, "web-canary", canary.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name)
		assert.True(t, metav1.IsControlledBy(&canary, k.target.Rollout))
	}

	if k.route != nil {
		var route gatewayv1.HTTPRoute
		require.True(t, k.get(t, &route, "web"))
		var saved []gatewayv1.HTTPRouteRule
		require.NoError(t, json.Unmarshal([]byte(route.Annotations[AnnotationOriginalRules]), &saved))
		assert.Equal(t, k.route.Spec.Rules, saved, "the stored rules are saved as the server stored them")
		var weights [][2]int32
		headerRules := 0
		for _, rule := range route.Spec.Rules {
			switch len(rule.BackendRefs) {
			case 2:
				assert.Equal(t, "web", string(rule.BackendRefs[0].Name))
				assert.Equal(t, "web-canary", string(rule.BackendRefs[1].Name))
				weights = append(weights, [2]int32{*rule.BackendRefs[0].Weight, *rule.BackendRefs[1].Weight})
			case 1:
				if rule.BackendRefs[0].Name == "web-canary" {
					headerRules++
					for _, m := range rule.Matches {
						assert.NotNil(t, m.Path)
						assert.Contains(t, m.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchExact), Name: "X-Canary", Value: "always"})
					}
				}
			}
		}
		assert.Equal(t, [][2]int32{{100 - weight, weight}, {100 - weight, weight}, {100 - weight, weight}}, weights, "the three rules of the Service")
		if withHeader {
			assert.Equal(t, 3, headerRules)
			assert.Len(t, route.Spec.Rules, 7)
		} else {
			assert.Equal(t, 0, headerRules)
			assert.Len(t, route.Spec.Rules, 4)
		}
	}
}

// expectUntouchedByRoute calls Route again and checks that no object changed on the server.
func (k *cluster) expectUntouchedByRoute(t *testing.T, weight int32, matches []v1alpha1.HTTPRouteMatch) {
	t.Helper()
	versions := func() map[string]string {
		v := map[string]string{}
		for _, o := range []struct {
			obj  client.Object
			name string
		}{
			{&corev1.Service{}, "web"}, {&corev1.Service{}, "web-canary"},
			{&networkingv1.Ingress{}, "web-canary"}, {&gatewayv1.HTTPRoute{}, "web"},
		} {
			if k.get(t, o.obj, o.name) {
				v[fmt.Sprintf("%T %s", o.obj, o.name)] = o.obj.GetResourceVersion()
			}
		}
		return v
	}
	before := versions()
	k.rec.reset()
	require.NoError(t, k.router().Route(context.Background(), weight, matches))
	assert.Empty(t, k.rec.reset(), "a second Route writes nothing, whatever the server defaulted")
	assert.Equal(t, before, versions())
}

// expectRestored checks that the user's objects are exactly as the server stored them
// before the release and that nothing generated is left.
func (k *cluster) expectRestored(t *testing.T) {
	t.Helper()
	var svc corev1.Service
	require.True(t, k.get(t, &svc, "web"))
	assert.Equal(t, k.svc.Spec, svc.Spec)
	assert.Equal(t, k.svc.Annotations, svc.Annotations)
	assert.Equal(t, k.svc.Labels, svc.Labels)
	assert.False(t, k.get(t, &corev1.Service{}, "web-canary"), "canary Service deleted")
	if k.ing != nil {
		var user networkingv1.Ingress
		require.True(t, k.get(t, &user, "web"))
		assert.Equal(t, k.ing.ResourceVersion, user.ResourceVersion, "the user's Ingress is never written")
		assert.False(t, k.get(t, &networkingv1.Ingress{}, "web-canary"), "canary Ingress deleted")
	}
	if k.route != nil {
		var route gatewayv1.HTTPRoute
		require.True(t, k.get(t, &route, "web"))
		assert.Equal(t, k.route.Spec, route.Spec)
		assert.Equal(t, k.route.Annotations, route.Annotations)
		assert.Equal(t, k.route.Labels, route.Labels)
	}
}

// TestOnARealAPIServer walks a release and an abort for each kind of routing against
// kube-apiserver with the Gateway API CRDs, where defaulting, CEL validation and resource
// versions are real.
func TestOnARealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp := testbed.StartControlPlane(t)
	xCanary := []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}
	releaseSteps := []v1alpha1.RolloutStep{{Traffic: ptr.To("0%")}, {Traffic: ptr.To("30%"), Matches: xCanary}, {Traffic: ptr.To("100%")}}

	for _, kind := range []struct {
		name    string
		routing v1alpha1.TrafficRouting
	}{
		{"gateway", gatewayRouting()},
		{"ingress", ingressRouting()},
		{"service", serviceRouting()},
	} {
		t.Run(kind.name, func(t *testing.T) {
			serviceOnly := kind.routing.Ingress == nil && kind.routing.Gateway == nil

			t.Run("Release", func(t *testing.T) {
				k := newCluster(t, cp, kind.name+"-release", kind.routing)
				err := k.router().Validate(ctx, releaseSteps, stepsPath)
				if serviceOnly {
					var fe *field.Error
					require.ErrorAs(t, err, &fe)
					assert.Equal(t, steps+"[1].traffic", fe.Field)
				} else {
					require.NoError(t, err)
				}

				k.slices(t, "web", stableRev)
				require.NoError(t, k.router().Route(ctx, 0, nil), "no traffic to the canary waits for nothing")
				k.expectRouted(t, 0, false)
				k.expectUntouchedByRoute(t, 0, nil)

				var nr *NotReadyError
				weight := int32(30)
				if serviceOnly {
					weight = 100
				}
				require.ErrorAs(t, k.router().Route(ctx, weight, nil), &nr, "the canary Service has no endpoints yet")
				assert.Equal(t, &NotReadyError{Service: "web-canary", Revision: canaryRev}, nr)
				k.expectRouted(t, 0, false)
				k.slices(t, "web-canary", stableRev, canaryRev)
				require.ErrorAs(t, k.router().Route(ctx, weight, nil), &nr, "stale slices still hold the other revision")
				assert.Equal(t, &NotReadyError{Service: "web-canary", Revision: canaryRev, Ready: 2, Others: 2}, nr)
				k.expectRouted(t, 0, false)
				k.slices(t, "web-canary", canaryRev)

				if !serviceOnly {
					require.NoError(t, k.router().Route(ctx, 30, xCanary))
					k.expectRouted(t, 30, true)
					k.expectUntouchedByRoute(t, 30, xCanary)
				}

				require.NoError(t, k.router().Route(ctx, 100, nil))
				k.expectRouted(t, 100, false)
				k.expectUntouchedByRoute(t, 100, nil)

				if !serviceOnly {
					require.ErrorAs(t, k.router().Finish(ctx, canaryRev), &nr, "the stable Service's slices still hold the old pods")
					assert.Equal(t, &NotReadyError{Service: "web", Revision: canaryRev, Ready: 0, Others: 2}, nr)
					var pinnedSvc corev1.Service
					require.True(t, k.get(t, &pinnedSvc, "web"))
					assert.Equal(t, pinned(canaryRev), pinnedSvc.Spec.Selector, "the stable Service moved to the winner")
					if k.route != nil {
						var route gatewayv1.HTTPRoute
						require.True(t, k.get(t, &route, "web"))
						assert.Contains(t, route.Annotations, AnnotationOriginalRules, "the weights stay until the slices follow")
					}
					if k.ing != nil {
						assert.True(t, k.get(t, &networkingv1.Ingress{}, "web-canary"), "the canary Ingress stays until the slices follow")
					}
				}
				k.slices(t, "web", canaryRev)
				require.NoError(t, k.router().Finish(ctx, canaryRev))
				var svc corev1.Service
				require.True(t, k.get(t, &svc, "web"))
				assert.Equal(t, pinned(canaryRev), svc.Spec.Selector, "the stable Service stays on the winner")
				assert.True(t, k.get(t, &corev1.Service{}, "web-canary"), "the canary Service stays until Unpin")
				if k.route != nil {
					var route gatewayv1.HTTPRoute
					require.True(t, k.get(t, &route, "web"))
					assert.Equal(t, k.route.Spec, route.Spec, "Finish restores the user's rules")
					assert.Equal(t, k.route.Annotations, route.Annotations)
				}
				if k.ing != nil {
					assert.False(t, k.get(t, &networkingv1.Ingress{}, "web-canary"), "Finish deletes the canary Ingress")
				}
				require.NoError(t, k.router().Finish(ctx, canaryRev), "Finish is idempotent")

				require.NoError(t, k.router().Unpin(ctx))
				k.expectRestored(t)
				require.NoError(t, k.router().Unpin(ctx), "Unpin is idempotent")
				k.expectRestored(t)
			})

			t.Run("Abort", func(t *testing.T) {
				k := newCluster(t, cp, kind.name+"-abort", kind.routing)
				weight := int32(50)
				if serviceOnly {
					weight = 100
				}
				k.slices(t, "web", stableRev)
				k.slices(t, "web-canary", canaryRev)
				require.NoError(t, k.router().Route(ctx, weight, nil))
				k.expectRouted(t, weight, false)

				if serviceOnly {
					// The endpointslice controller followed the pin to the canary.
					k.slices(t, "web", canaryRev)
					var nr *NotReadyError
					require.ErrorAs(t, k.router().Finish(ctx, stableRev), &nr, "the stable Service pinned back waits for its slices")
					k.slices(t, "web", stableRev)
				}
				require.NoError(t, k.router().Finish(ctx, stableRev))
				var svc corev1.Service
				require.True(t, k.get(t, &svc, "web"))
				assert.Equal(t, pinned(stableRev), svc.Spec.Selector, "all traffic on the stable pods")

				require.NoError(t, k.router().Unpin(ctx))
				k.expectRestored(t)
			})

			if kind.routing.Gateway != nil {
				t.Run("Baseline", func(t *testing.T) {
					k := newCluster(t, cp, kind.name+"-baseline", kind.routing)
					k.target.BaselineRevision = baselineRev
					for i := range 2 {
						require.NoError(t, cp.Client.Create(ctx, &corev1.Pod{
							ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: fmt.Sprintf("web-%s-%d", baselineRev, i), Labels: pinned(baselineRev)},
							Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
						}))
					}
					k.slices(t, "web", stableRev)
					k.slices(t, "web-canary", canaryRev)
					var nr *NotReadyError
					require.ErrorAs(t, k.router().Route(ctx, 20, nil), &nr, "the baseline Service has no endpoints yet")
					assert.Equal(t, "web-baseline", nr.Service)
					k.slices(t, "web-baseline", baselineRev)
					require.NoError(t, k.router().Route(ctx, 20, nil))

					var baselineSvc corev1.Service
					require.True(t, k.get(t, &baselineSvc, "web-baseline"))
					assert.Equal(t, pinned(baselineRev), baselineSvc.Spec.Selector)
					assert.Equal(t, corev1.ServiceTypeClusterIP, baselineSvc.Spec.Type)
					assert.True(t, metav1.IsControlledBy(&baselineSvc, k.target.Rollout))
					weights := func() []map[string]int32 {
						var route gatewayv1.HTTPRoute
						require.True(t, k.get(t, &route, "web"))
						var out []map[string]int32
						for _, rule := range route.Spec.Rules {
							w := map[string]int32{}
							for _, ref := range rule.BackendRefs {
								w[string(ref.Name)] = *ref.Weight
							}
							out = append(out, w)
						}
						return out
					}
					baselined := map[string]int32{"web": 60, "web-canary": 20, "web-baseline": 20}
					assert.Equal(t, []map[string]int32{baselined, {"static": 1}, baselined, baselined}, weights())
					k.rec.reset()
					require.NoError(t, k.router().Route(ctx, 20, nil))
					assert.Empty(t, k.rec.reset(), "a second Route writes nothing, whatever the server defaulted")

					br, ok := k.router().(BaselineRouter)
					require.True(t, ok)
					require.NoError(t, br.DropBaseline(ctx))
					plain := map[string]int32{"web": 80, "web-canary": 20}
					assert.Equal(t, []map[string]int32{plain, {"static": 1}, plain, plain}, weights())
					assert.False(t, k.get(t, &corev1.Service{}, "web-baseline"), "the baseline Service is deleted")
					k.rec.reset()
					require.NoError(t, br.DropBaseline(ctx))
					assert.Empty(t, k.rec.reset(), "a second DropBaseline writes nothing")
					k.target.BaselineRevision = ""
					require.NoError(t, k.router().Route(ctx, 20, nil))
					assert.Empty(t, k.rec.reset(), "the dropped route is the route of the step without a baseline")

					require.NoError(t, k.router().Finish(ctx, stableRev))
					require.NoError(t, k.router().Unpin(ctx))
					k.expectRestored(t)
				})
			}
		})
	}
}
