package trafficsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/test/testbed"
)

const ns = "shop"

func service(name string, selector map[string]string) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector},
	}
}

// pods makes n Ready pods of app at revision hash, with annotations.
func pods(app, hash string, n int, annotations map[string]string) []corev1.Pod {
	var out []corev1.Pod
	for i := range n {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   ns,
				Name:        app + "-" + hash + "-" + string(rune('a'+i)),
				Labels:      map[string]string{"app": app, podTemplateHash: hash},
				Annotations: annotations,
			},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
		out = append(out, p)
	}
	return out
}

func notReady(ps []corev1.Pod) []corev1.Pod {
	for i := range ps {
		ps[i].Status.Conditions[0].Status = corev1.ConditionFalse
	}
	return ps
}

func terminating(ps []corev1.Pod) []corev1.Pod {
	for i := range ps {
		ps[i].DeletionTimestamp = ptr.To(metav1.Now())
	}
	return ps
}

func concat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func ingress(name, host, path, svc string, annotations map[string]string) networkingv1.Ingress {
	return networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path:     path,
				PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend:  networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
}

func canary(name, svc string, annotations map[string]string) networkingv1.Ingress {
	a := map[string]string{nginxCanary: "true"}
	for k, v := range annotations {
		a[k] = v
	}
	return ingress(name, "shop.example.com", "/", svc, a)
}

func backendRef(svc string, weight *int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(svc), Port: ptr.To[gatewayv1.PortNumber](80)},
		Weight:                 weight,
	}}
}

func headerMatch(typ gatewayv1.HeaderMatchType, name, value string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Type: &typ, Name: gatewayv1.HTTPHeaderName(name), Value: value}}}
}

func httpRoute(name string, rules ...gatewayv1.HTTPRouteRule) gatewayv1.HTTPRoute {
	return gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gatewayv1.HTTPRouteSpec{Rules: rules},
	}
}

var (
	stable   = Backend{Service: "shop", Revision: "s1"}
	green    = Backend{Service: "shop-canary", Revision: "c1"}
	allBlue  = Backend{Service: "shop-all", Revision: "s1"}
	allGreen = Backend{Service: "shop-all", Revision: "c1"}
)

// base is a release in progress: three stable pods, one canary pod, a stable Service, a
// canary Service and one selecting both.
func base() Objects {
	return Objects{
		Services: []corev1.Service{
			service("shop", map[string]string{"app": "shop", podTemplateHash: "s1"}),
			service("shop-canary", map[string]string{"app": "shop", podTemplateHash: "c1"}),
			service("shop-all", map[string]string{"app": "shop"}),
			service("empty", map[string]string{"app": "nothing"}),
			service("external", nil),
		},
		Pods: concat(pods("shop", "s1", 3, nil), pods("shop", "c1", 1, nil)),
	}
}

// caughtUp gives objs the EndpointSlices the endpointslice controller writes once it has
// caught up: one per Service with a selector, an endpoint per selected pod, ready when the
// pod is Ready and not terminating.
func caughtUp(objs Objects) Objects {
	objs.EndpointSlices = nil
	for _, svc := range objs.Services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		es := discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc.Name + "-x1", Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, p := range objs.Pods {
			if !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			ready := p.DeletionTimestamp == nil && testbed.PodReady(&p)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{"10.0.0.1"},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name},
			})
		}
		objs.EndpointSlices = append(objs.EndpointSlices, es)
	}
	return objs
}

func with(objs Objects, f func(*Objects)) Objects {
	f(&objs)
	return objs
}

func TestRoute(t *testing.T) {
	canaryHeader := map[string]string{"X-Canary": "always"}
	mainIngress := ingress("shop", "shop.example.com", "/", "shop", nil)
	tests := []struct {
		name         string
		objs         Objects
		entry        Entry
		header       Shares
		plain        Shares
		all          Shares
		wantProblems []string
	}{
		{
			name:  "service spreads by pod count per revision",
			objs:  base(),
			entry: Entry{Kind: KindService, Name: "shop-all"},
			plain: Shares{allBlue: 0.75, allGreen: 0.25},
		},
		{
			name: "pods not ready, terminating or unselected take nothing",
			objs: with(base(), func(o *Objects) {
				o.Pods = concat(o.Pods, notReady(pods("shop", "c1", 5, nil)), terminating(pods("shop", "c2", 5, nil)), pods("other", "c1", 4, nil))
			}),
			entry: Entry{Kind: KindService, Name: "shop-all"},
			plain: Shares{allBlue: 0.75, allGreen: 0.25},
		},
		{
			name: "slices not caught up with a new selector still reach the old pods",
			objs: with(caughtUp(base()), func(o *Objects) {
				o.Services[0].Spec.Selector[podTemplateHash] = "c1"
			}),
			entry: Entry{Kind: KindService, Name: "shop"},
			plain: Shares{stable: 1},
		},
		{
			name: "slices not caught up with new pods are a 503 backend",
			objs: with(caughtUp(with(base(), func(o *Objects) { o.Pods = pods("shop", "s1", 3, nil) })), func(o *Objects) {
				o.Pods = concat(o.Pods, pods("shop", "c1", 2, nil))
			}),
			entry: Entry{Kind: KindService, Name: "shop-canary"},
			plain: Shares{{Service: "shop-canary"}: 1},
		},
		{
			name: "an endpoint whose pod is gone takes nothing",
			objs: with(caughtUp(base()), func(o *Objects) {
				o.Pods = o.Pods[1:]
			}),
			entry: Entry{Kind: KindService, Name: "shop-all"},
			plain: Shares{allBlue: 2.0 / 3, allGreen: 1.0 / 3},
		},
		{
			name: "StatefulSet pods are told apart by controller-revision-hash",
			objs: with(base(), func(o *Objects) {
				o.Pods = concat(pods("db", "x", 2, nil), pods("db", "y", 1, nil))
				for i := range o.Pods {
					o.Pods[i].Labels[controllerRevisionKey] = o.Pods[i].Labels[podTemplateHash]
					delete(o.Pods[i].Labels, podTemplateHash)
				}
				o.Services = []corev1.Service{service("db", map[string]string{"app": "db"})}
			}),
			entry: Entry{Kind: KindService, Name: "db"},
			plain: Shares{{Service: "db", Revision: "x"}: 2.0 / 3, {Service: "db", Revision: "y"}: 1.0 / 3},
		},
		{
			name:  "service without ready pods is a 503 backend",
			objs:  base(),
			entry: Entry{Kind: KindService, Name: "empty"},
			plain: Shares{{Service: "empty"}: 1},
		},
		{
			name:  "service without selector has no pods",
			objs:  base(),
			entry: Entry{Kind: KindService, Name: "external"},
			plain: Shares{{Service: "external"}: 1},
		},
		{
			name:  "missing service is a 503 backend",
			objs:  base(),
			entry: Entry{Kind: KindService, Name: "gone"},
			plain: Shares{{Service: "gone"}: 1},
		},
		{
			name: "pods without pod-template-hash are one revision",
			objs: with(base(), func(o *Objects) {
				o.Pods = pods("bare", "x", 2, nil)
				for i := range o.Pods {
					delete(o.Pods[i].Labels, podTemplateHash)
				}
				o.Services = []corev1.Service{service("bare", map[string]string{"app": "bare"})}
			}),
			entry: Entry{Kind: KindService, Name: "bare"},
			plain: Shares{{Service: "bare"}: 1},
		},
		{
			name:  "ingress without canary",
			objs:  with(base(), func(o *Objects) { o.Ingresses = []networkingv1.Ingress{mainIngress} }),
			entry: Entry{Kind: KindIngress, Name: "shop", Headers: canaryHeader, HeaderShare: 0.5},
			plain: Shares{stable: 1},
		},
		{
			name: "canary by weight and by header",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryWeight: "30", nginxCanaryByHeader: "X-Canary",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: canaryHeader, HeaderShare: 0.1},
			header: Shares{green: 1},
			plain:  Shares{stable: 0.7, green: 0.3},
			all:    Shares{stable: 0.63, green: 0.37},
		},
		{
			name: "header names are case-insensitive",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{nginxCanaryByHeader: "X-Canary"})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: map[string]string{"x-canary": "always"}, HeaderShare: 1},
			header: Shares{green: 1},
			plain:  Shares{stable: 1},
			all:    Shares{green: 1},
		},
		{
			name: "header value never keeps requests off the weighted canary",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryWeight: "50", nginxCanaryByHeader: "X-Canary",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: map[string]string{"X-Canary": "never"}, HeaderShare: 0.5},
			header: Shares{stable: 1},
			plain:  Shares{stable: 0.5, green: 0.5},
			all:    Shares{stable: 0.75, green: 0.25},
		},
		{
			name: "other header values fall back to the weight",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryWeight: "20", nginxCanaryByHeader: "X-Canary",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: map[string]string{"X-Canary": "maybe"}, HeaderShare: 1},
			header: Shares{stable: 0.8, green: 0.2},
			plain:  Shares{stable: 0.8, green: 0.2},
		},
		{
			name: "header value replaces always",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryByHeader: "X-Canary", nginxCanaryByHeaderValue: "green",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: canaryHeader, HeaderShare: 1},
			header: Shares{stable: 1},
			plain:  Shares{stable: 1},
		},
		{
			name: "header value match",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryByHeader: "X-Canary", nginxCanaryByHeaderValue: "green",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: map[string]string{"X-Canary": "green"}, HeaderShare: 1},
			header: Shares{green: 1},
			plain:  Shares{stable: 1},
			all:    Shares{green: 1},
		},
		{
			name: "header pattern",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryByHeader: "X-Canary", nginxCanaryByHeaderRegex: "^(green|blue)$",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: map[string]string{"X-Canary": "green"}, HeaderShare: 1},
			header: Shares{green: 1},
			plain:  Shares{stable: 1},
			all:    Shares{green: 1},
		},
		{
			name: "weight total",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryWeight: "50", nginxCanaryWeightTotal: "200",
				})}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{stable: 0.75, green: 0.25},
		},
		{
			name: "weight above the total sends everything to the canary",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{nginxCanaryWeight: "150"})}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{green: 1},
		},
		{
			name: "invalid canary annotations fall back to defaults",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "shop-canary", map[string]string{
					nginxCanaryWeight: "thirty", nginxCanaryWeightTotal: "0",
					nginxCanaryByHeader: "X-Canary", nginxCanaryByHeaderRegex: "(",
				})}
			}),
			entry:  Entry{Kind: KindIngress, Name: "shop", Headers: canaryHeader, HeaderShare: 1},
			header: Shares{stable: 1},
			plain:  Shares{stable: 1},
			wantProblems: []string{
				`ingress shop-canary: nginx.ingress.kubernetes.io/canary-by-header-pattern "(": error parsing regexp: missing closing ): ` + "`(`; ignored",
				`ingress shop-canary: nginx.ingress.kubernetes.io/canary-weight "thirty" is not an integer >= 0; using 0`,
				`ingress shop-canary: nginx.ingress.kubernetes.io/canary-weight-total "0" is not an integer >= 1; using 100`,
			},
		},
		{
			name: "canary on another path is not this ingress's canary",
			objs: with(base(), func(o *Objects) {
				c := canary("shop-canary", "shop-canary", map[string]string{nginxCanaryWeight: "100"})
				c.Spec.Rules[0].HTTP.Paths[0].Path = "/api"
				o.Ingresses = []networkingv1.Ingress{mainIngress, c}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{stable: 1},
		},
		{
			name: "ingress not annotated as canary is not a canary",
			objs: with(base(), func(o *Objects) {
				c := canary("shop-canary", "shop-canary", map[string]string{nginxCanaryWeight: "100"})
				c.Annotations[nginxCanary] = "false"
				o.Ingresses = []networkingv1.Ingress{mainIngress, c}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{stable: 1},
		},
		{
			name: "first canary by name wins",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{
					canary("z-canary", "shop-all", map[string]string{nginxCanaryWeight: "100"}),
					mainIngress,
					canary("a-canary", "shop-canary", map[string]string{nginxCanaryWeight: "100"}),
				}
			}),
			entry:        Entry{Kind: KindIngress, Name: "shop"},
			plain:        Shares{green: 1},
			wantProblems: []string{`ingress shop: canaries a-canary and z-canary both serve host "shop.example.com" path "/"; using a-canary`},
		},
		{
			name: "each location of an ingress gets an equal part",
			objs: with(base(), func(o *Objects) {
				two := ingress("shop", "shop.example.com", "/", "shop", nil)
				api := ingress("x", "api.example.com", "", "shop-all", nil).Spec.Rules[0]
				two.Spec.Rules = append(two.Spec.Rules, api)
				o.Ingresses = []networkingv1.Ingress{two, canary("shop-canary", "shop-canary", map[string]string{nginxCanaryWeight: "50"})}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{stable: 0.25, green: 0.25, allBlue: 0.375, allGreen: 0.125},
		},
		{
			name: "default backend",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
					Spec:       networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "shop"}}},
				}}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{stable: 1},
		},
		{
			name:  "missing ingress routes nothing",
			objs:  base(),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{{}: 1},
		},
		{
			name: "canary service without pods",
			objs: with(base(), func(o *Objects) {
				o.Ingresses = []networkingv1.Ingress{mainIngress, canary("shop-canary", "empty", map[string]string{nginxCanaryWeight: "10"})}
			}),
			entry: Entry{Kind: KindIngress, Name: "shop"},
			plain: Shares{stable: 0.9, {Service: "empty"}: 0.1},
		},
		{
			name: "httproute header rule first, weights after",
			objs: with(base(), func(o *Objects) {
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{
						Matches:     []gatewayv1.HTTPRouteMatch{headerMatch(gatewayv1.HeaderMatchExact, "X-Canary", "always")},
						BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop-canary", nil)},
					},
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
						backendRef("shop", ptr.To[int32](80)), backendRef("shop-canary", ptr.To[int32](20)),
					}},
				)}
			}),
			entry:  Entry{Kind: KindHTTPRoute, Name: "shop", Headers: map[string]string{"x-canary": "always"}, HeaderShare: 0.5},
			header: Shares{green: 1},
			plain:  Shares{stable: 0.8, green: 0.2},
			all:    Shares{stable: 0.4, green: 0.6},
		},
		{
			// A step's fresh baseline: pods of the stable template under a hash of their
			// own, behind a Service of their own, weighted like any backend.
			name: "httproute sends a fresh baseline's Service its weight, by its pods' own hash",
			objs: with(base(), func(o *Objects) {
				o.Services = append(o.Services, service("shop-baseline", map[string]string{"app": "shop", podTemplateHash: "b1"}))
				o.Pods = concat(o.Pods, pods("shop", "b1", 2, nil))
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
						backendRef("shop", ptr.To[int32](60)), backendRef("shop-canary", ptr.To[int32](20)), backendRef("shop-baseline", ptr.To[int32](20)),
					}},
				)}
			}),
			entry: Entry{Kind: KindHTTPRoute, Name: "shop"},
			plain: Shares{stable: 0.6, green: 0.2, {Service: "shop-baseline", Revision: "b1"}: 0.2},
		},
		{
			name: "httproute rules are taken in order",
			objs: with(base(), func(o *Objects) {
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop", nil)}},
					gatewayv1.HTTPRouteRule{
						Matches:     []gatewayv1.HTTPRouteMatch{headerMatch(gatewayv1.HeaderMatchExact, "X-Canary", "always")},
						BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop-canary", nil)},
					},
				)}
			}),
			entry:  Entry{Kind: KindHTTPRoute, Name: "shop", Headers: canaryHeader, HeaderShare: 1},
			header: Shares{stable: 1},
			plain:  Shares{stable: 1},
		},
		{
			name: "httproute regular expression is anchored, any match of a rule will do",
			objs: with(base(), func(o *Objects) {
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{
						Matches: []gatewayv1.HTTPRouteMatch{
							headerMatch(gatewayv1.HeaderMatchRegularExpression, "X-Canary", "alw"),
							headerMatch(gatewayv1.HeaderMatchRegularExpression, "X-Canary", "al.*s"),
						},
						BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop-canary", nil)},
					},
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop", nil)}},
				)}
			}),
			entry:  Entry{Kind: KindHTTPRoute, Name: "shop", Headers: canaryHeader, HeaderShare: 1},
			header: Shares{green: 1},
			plain:  Shares{stable: 1},
			all:    Shares{green: 1},
		},
		{
			name: "httproute match needs every header and no query parameter",
			objs: with(base(), func(o *Objects) {
				both := headerMatch(gatewayv1.HeaderMatchExact, "X-Canary", "always")
				both.Headers = append(both.Headers, gatewayv1.HTTPHeaderMatch{Name: "X-User", Value: "beta"})
				query := headerMatch(gatewayv1.HeaderMatchExact, "X-Canary", "always")
				query.QueryParams = []gatewayv1.HTTPQueryParamMatch{{Name: "canary", Value: "1"}}
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{
						Matches:     []gatewayv1.HTTPRouteMatch{both, query},
						BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop-canary", nil)},
					},
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop", nil)}},
				)}
			}),
			entry:  Entry{Kind: KindHTTPRoute, Name: "shop", Headers: canaryHeader, HeaderShare: 1},
			header: Shares{stable: 1},
			plain:  Shares{stable: 1},
		},
		{
			name: "httproute weight 0 gets nothing, default weight is 1, other kinds are left out",
			objs: with(base(), func(o *Objects) {
				bucket := backendRef("bucket", ptr.To[int32](5))
				bucket.Group = ptr.To[gatewayv1.Group]("storage.example.com")
				bucket.Kind = ptr.To[gatewayv1.Kind]("Bucket")
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
						backendRef("shop", nil), backendRef("shop-canary", ptr.To[int32](0)), backendRef("shop-all", ptr.To[int32](3)), bucket,
					}},
				)}
			}),
			entry:        Entry{Kind: KindHTTPRoute, Name: "shop"},
			plain:        Shares{stable: 0.25, allBlue: 0.5625, allGreen: 0.1875},
			wantProblems: []string{"httproute shop: backendRef bucket is not a core Service; ignored"},
		},
		{
			name: "httproute with no matching rule or no weight routes nothing",
			objs: with(base(), func(o *Objects) {
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{
						Matches:     []gatewayv1.HTTPRouteMatch{headerMatch(gatewayv1.HeaderMatchExact, "X-Canary", "always")},
						BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop-canary", ptr.To[int32](0))},
					},
				)}
			}),
			entry:  Entry{Kind: KindHTTPRoute, Name: "shop", Headers: canaryHeader, HeaderShare: 0.5},
			header: Shares{{}: 1},
			plain:  Shares{{}: 1},
		},
		{
			name: "httproute invalid regular expression fails the match",
			objs: with(base(), func(o *Objects) {
				o.HTTPRoutes = []gatewayv1.HTTPRoute{httpRoute("shop",
					gatewayv1.HTTPRouteRule{
						Matches:     []gatewayv1.HTTPRouteMatch{headerMatch(gatewayv1.HeaderMatchRegularExpression, "X-Canary", "[")},
						BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop-canary", nil)},
					},
					gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop", nil)}},
				)}
			}),
			entry:        Entry{Kind: KindHTTPRoute, Name: "shop", Headers: canaryHeader, HeaderShare: 1},
			header:       Shares{stable: 1},
			plain:        Shares{stable: 1},
			wantProblems: []string{"httproute shop: header X-Canary regular expression \"[\": error parsing regexp: missing closing ]: `[)$`; the match fails"},
		},
		{
			name:  "missing httproute routes nothing",
			objs:  base(),
			entry: Entry{Kind: KindHTTPRoute, Name: "shop"},
			plain: Shares{{}: 1},
		},
		{
			name: "invalid pod annotations are reported",
			objs: with(base(), func(o *Objects) {
				o.Pods = pods("shop", "s1", 1, map[string]string{AnnotationErrorRate: "1.5", AnnotationLatency: "fast"})
			}),
			entry: Entry{Kind: KindService, Name: "shop"},
			plain: Shares{stable: 1},
			wantProblems: []string{
				`pod shop-s1-a: sim.promgate.io/error-rate "1.5" is not a fraction in 0..1; using 0`,
				`pod shop-s1-a: sim.promgate.io/latency "fast" is not a non-negative Go duration; using 10ms`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.objs
			if objs.EndpointSlices == nil {
				objs = caughtUp(objs)
			}
			snap := Route(objs, []Entry{tt.entry})
			split := snap.Entry(tt.entry.Kind, tt.entry.Name)
			header, all := tt.header, tt.all
			if header == nil {
				header = tt.plain
			}
			if all == nil {
				all = tt.plain
			}
			assertShares(t, header, split.Header, "header")
			assertShares(t, tt.plain, split.Plain, "plain")
			assertShares(t, all, split.All, "all")
			assert.Equal(t, tt.wantProblems, snap.Problems)
			assert.True(t, snap.Time.IsZero())
		})
	}
}

func assertShares(t *testing.T, want, got Shares, what string) {
	t.Helper()
	if !assert.Len(t, got, len(want), "%s backends: %v", what, got) {
		return
	}
	for b, v := range want {
		assert.InDelta(t, v, got[b], 1e-9, "%s share of %+v", what, b)
	}
}

func TestRouteBehaviour(t *testing.T) {
	objs := base()
	objs.Pods = concat(
		pods("shop", "s1", 2, map[string]string{AnnotationErrorRate: "0.1", AnnotationLatency: "20ms"}),
		pods("shop", "s1", 2, map[string]string{AnnotationErrorRate: "0.3", AnnotationLatency: "40ms", AnnotationLatencySpread: "0.2"})[0:1],
		pods("shop", "c1", 1, map[string]string{AnnotationErrorRate: " 0.5 "}),
	)
	objs.Pods[2].Name = "odd-one"
	w := newWorld(caughtUp(objs))
	blue, ok := w.revision(allBlue)
	assert.True(t, ok)
	assert.Equal(t, revision{name: "s1", pods: 3, errorRate: (0.1 + 0.1 + 0.3) / 3, latency: (20 + 20 + 40) * time.Millisecond / 3, spread: 0.2 / 3}, blue)
	green, ok := w.revision(allGreen)
	assert.True(t, ok)
	assert.Equal(t, revision{name: "c1", pods: 1, errorRate: 0.5, latency: DefaultLatency}, green)
	_, ok = w.revision(Backend{Service: "empty"})
	assert.False(t, ok, "a Service without pods has no revision")
	_, ok = w.revision(Backend{})
	assert.False(t, ok, "unrouted requests reach no revision")
}
