package traffic

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

const (
	ns           = "shop"
	stableRev    = "6f7d8c9b5"
	canaryRev    = "7c4b5d6f8"
	routingField = "spec.strategy.canary.trafficRoutings[0]"
	steps        = "spec.strategy.canary.steps"
)

var (
	routingPath = field.NewPath("spec", "strategy", "canary", "trafficRoutings").Index(0)
	stepsPath   = field.NewPath("spec", "strategy", "canary", "steps")
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(s))
	require.NoError(t, v1alpha1.AddToScheme(s))
	require.NoError(t, gatewayv1.Install(s))
	// Istio's kinds are served as they are on a cluster with its CRDs: unstructured.
	for _, gvk := range []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK} {
		s.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
		s.AddKnownTypeWithName(gvk.GroupVersion().WithKind(gvk.Kind+"List"), &unstructured.UnstructuredList{})
	}
	return s
}

func testRollout() *v1alpha1.Rollout {
	return &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", UID: "rollout-uid"}}
}

// testService is a NodePort Service, so that the canary copy's dropping of clusterIP and
// node ports shows.
func testService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: map[string]string{"team": "shop"}},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeNodePort,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Selector:   map[string]string{"app": "web", "tier": "front"},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080},
				{Name: "grpc", Protocol: corev1.ProtocolTCP, Port: 9090, TargetPort: intstr.FromString("grpc"), NodePort: 30090},
			},
		},
	}
}

func prefix() *networkingv1.PathType { return ptr.To(networkingv1.PathTypePrefix) }

func backend(svc string, port int32) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}}
}

func testIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"}},
			Rules: []networkingv1.IngressRule{
				{Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: prefix(), Backend: backend("web", 80)},
					{Path: "/images", PathType: prefix(), Backend: backend("images", 80)},
				}}}},
				{Host: "admin.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: prefix(), Backend: backend("admin", 80)},
				}}}},
			},
		},
	}
}

func pathPrefix(v string) *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(v)}
}

func backendRef(svc string, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
			Name: gatewayv1.ObjectName(svc), Port: ptr.To(gatewayv1.PortNumber(80)),
		},
		Weight: ptr.To(weight),
	}}
}

// testRoute has a rule for the Service with two matches, a name and a filter, a rule for
// another Service, and a catch-all rule for the Service.
func testRoute() *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: map[string]string{"team": "shop"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public"}}},
			Hostnames:       []gatewayv1.Hostname{"shop.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{
				{
					Name:    ptr.To(gatewayv1.SectionName("api")),
					Matches: []gatewayv1.HTTPRouteMatch{{Path: pathPrefix("/api")}, {Path: pathPrefix("/v2")}},
					Filters: []gatewayv1.HTTPRouteFilter{{
						Type:                  gatewayv1.HTTPRouteFilterRequestHeaderModifier,
						RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Via", Value: "gateway"}}},
					}},
					BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("web", 1)},
				},
				{Matches: []gatewayv1.HTTPRouteMatch{{Path: pathPrefix("/static")}}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("static", 1)}},
				{Matches: []gatewayv1.HTTPRouteMatch{{Path: pathPrefix("/")}}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("web", 1)}},
			},
		},
	}
}

func serviceRouting() v1alpha1.TrafficRouting { return v1alpha1.TrafficRouting{Service: "web"} }
func ingressRouting() v1alpha1.TrafficRouting {
	return v1alpha1.TrafficRouting{Service: "web", Ingress: &v1alpha1.IngressTrafficRouting{Name: "web", ClassType: "nginx"}}
}
func gatewayRouting() v1alpha1.TrafficRouting {
	return v1alpha1.TrafficRouting{Service: "web", Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: "web"}}
}

func target(routing v1alpha1.TrafficRouting) Target {
	return Target{Rollout: testRollout(), Routing: routing, Field: routingPath, StableRevision: stableRev, CanaryRevision: canaryRev, Endpoints: &fakeEndpoints{}}
}

// fakeEndpoints answers Endpoints.Only from a table of the revision each Service's
// EndpointSlices hold alone; a Service missing from it has every revision ready. It
// records what was asked.
type fakeEndpoints struct {
	mu sync.Mutex
	// holds maps a Service name to the one revision its slices hold ready; "" for none.
	holds map[string]string
	asked []string
}

func (f *fakeEndpoints) Only(_ context.Context, svc client.ObjectKey, _ map[string]string, rev string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, svc.Name+"="+rev)
	if got, ok := f.holds[svc.Name]; ok && got != rev {
		return &NotReadyError{Service: svc.Name, Revision: rev}
	}
	return nil
}

func (f *fakeEndpoints) Serves(ctx context.Context, svc client.ObjectKey, sel map[string]string, rev string) error {
	return f.Only(ctx, svc, sel, rev)
}

// recorder counts and orders the writes the routers make.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) add(verb string, obj client.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, fmt.Sprintf("%s %T %s", verb, obj, obj.GetName()))
}

func (r *recorder) reset() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writes
	r.writes = nil
	return w
}

// newClient is a fake API server holding objs whose writes are recorded; extra, when set,
// runs before each write and may fail it.
func newClient(t *testing.T, extra *interceptor.Funcs, objs ...client.Object) (client.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).WithInterceptorFuncs(rec.funcs(extra)).Build()
	return c, rec
}

// funcs record every write, then hand it to extra or to the client.
func (rec *recorder) funcs(extra *interceptor.Funcs) interceptor.Funcs {
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			rec.add("create", obj)
			if extra != nil && extra.Create != nil {
				return extra.Create(ctx, c, obj, opts...)
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			rec.add("update", obj)
			if extra != nil && extra.Update != nil {
				return extra.Update(ctx, c, obj, opts...)
			}
			return c.Update(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			rec.add("delete", obj)
			if extra != nil && extra.Delete != nil {
				return extra.Delete(ctx, c, obj, opts...)
			}
			return c.Delete(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			rec.add("patch", obj)
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			rec.mu.Lock()
			rec.writes = append(rec.writes, "apply")
			rec.mu.Unlock()
			return c.Apply(ctx, obj, opts...)
		},
	}
}

func getService(t *testing.T, c client.Client, name string) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc))
	return &svc
}

func getIngress(t *testing.T, c client.Client, name string) *networkingv1.Ingress {
	t.Helper()
	var ing networkingv1.Ingress
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ing))
	return &ing
}

func getRoute(t *testing.T, c client.Client) *gatewayv1.HTTPRoute {
	t.Helper()
	var route gatewayv1.HTTPRoute
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, &route))
	return &route
}

func exists(t *testing.T, c client.Client, obj client.Object, name string) bool {
	t.Helper()
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if err == nil {
		return true
	}
	require.True(t, client.IgnoreNotFound(err) == nil, "getting %s: %v", name, err)
	return false
}

func header(name, value string) v1alpha1.HTTPRouteMatch {
	return v1alpha1.HTTPRouteMatch{Headers: []v1alpha1.HeaderMatch{{Type: "Exact", Name: name, Value: value}}}
}

func traffic(s string) *string { return &s }

// pinned is the Service's selector with the revision added.
func pinned(rev string) map[string]string {
	return map[string]string{"app": "web", "tier": "front", podTemplateHash: rev}
}
