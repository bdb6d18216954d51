package convert

import "strings"

// builtin is the PromQL of Flagger's built-in metrics for one provider, written against
// what promgate routes: the canary's requests are those of the "<service>-canary" Service
// (or, for linkerd, whose traffic follows the replicas, of the pods of the canary
// revision). Success rates are percentages and durations milliseconds, as Flagger's
// thresholdRange has them. INTERVAL is the metric's interval.
type builtin struct{ ok, all, duration string }

var builtins = map[string]builtin{
	"istio": {
		ok:       `istio_requests_total{reporter="destination",destination_service_namespace="{{args.namespace}}",destination_service_name="{{args.service}}-canary",response_code!~"5.*"}`,
		all:      `istio_requests_total{reporter="destination",destination_service_namespace="{{args.namespace}}",destination_service_name="{{args.service}}-canary"}`,
		duration: `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_service_namespace="{{args.namespace}}",destination_service_name="{{args.service}}-canary"}[INTERVAL])))`,
	},
	"linkerd": {
		ok:       `response_total{namespace="{{args.namespace}}",pod_template_hash="{{args.canary-hash}}",direction="inbound",classification!="failure"}`,
		all:      `response_total{namespace="{{args.namespace}}",pod_template_hash="{{args.canary-hash}}",direction="inbound"}`,
		duration: `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{namespace="{{args.namespace}}",pod_template_hash="{{args.canary-hash}}",direction="inbound"}[INTERVAL])))`,
	},
	"nginx": {
		ok:       `nginx_ingress_controller_requests{namespace="{{args.namespace}}",service="{{args.service}}-canary",status!~"5.*"}`,
		all:      `nginx_ingress_controller_requests{namespace="{{args.namespace}}",service="{{args.service}}-canary"}`,
		duration: `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="{{args.namespace}}",service="{{args.service}}-canary"}[INTERVAL]))) * 1000`,
	},
	"gatewayapi": envoy,
	"contour":    envoy,
}

// envoy is the built-ins of the Envoy-based Gateway API implementations (Contour, Envoy
// Gateway): an upstream cluster per Service and port.
var envoy = builtin{
	ok:       `envoy_cluster_upstream_rq{envoy_cluster_name=~"{{args.namespace}}_{{args.service}}-canary_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}`,
	all:      `envoy_cluster_upstream_rq{envoy_cluster_name=~"{{args.namespace}}_{{args.service}}-canary_[0-9a-zA-Z-]+"}`,
	duration: `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{args.namespace}}_{{args.service}}-canary_[0-9a-zA-Z-]+"}[INTERVAL])))`,
}

// builtinQuery is the PromQL of Flagger's built-in metric name for provider, over
// interval; false when the provider has none.
func builtinQuery(name, provider, interval string) (string, bool) {
	b, ok := builtins[provider]
	if !ok {
		return "", false
	}
	var q string
	switch name {
	case "request-success-rate":
		q = "sum(rate(" + b.ok + "[INTERVAL])) / sum(rate(" + b.all + "[INTERVAL])) * 100"
	case "request-duration":
		q = b.duration
	default:
		return "", false
	}
	return strings.ReplaceAll(q, "INTERVAL", interval), true
}
