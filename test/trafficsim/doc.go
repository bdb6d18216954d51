// Package trafficsim is the traffic simulator of the test bed. kwok's pods serve nothing, so
// the simulator computes where requests would go from the live objects of one namespace and
// exports what a real Prometheus scrapes and real analyses read.
//
// On every tick it lists Services, EndpointSlices, Pods, Ingresses, HTTPRoutes and Istio
// VirtualServices and DestinationRules, and routes each entry point's requests:
//   - a Service spreads over the ready endpoints of its EndpointSlices, as a data plane
//     does, in proportion to the number of endpoints of each revision (the pods' label
//     pod-template-hash, or controller-revision-hash for a StatefulSet's); slices the
//     endpointslice controller has not caught up on route to the pods they still hold, and
//     with no ready endpoint requests get 503;
//   - an Ingress follows ingress-nginx canaries: a canary Ingress (canary: "true") sharing a
//     host and path takes the requests whose canary-by-header header equals
//     canary-by-header-value ("always" without it; "never" keeps them off the canary) or
//     matches canary-by-header-pattern, then canary-weight / canary-weight-total (default
//     0/100) of the rest. Requests name no host or path: each location gets an equal part;
//   - an HTTPRoute sends a request to the first rule, in order, whose matches match its
//     headers (Exact, RegularExpression; paths and methods always match, query parameters
//     never, as requests carry none), split over the rule's Service backendRefs by weight;
//   - an Istio VirtualService sends a request to the first HTTP route, in order, whose
//     matches match its headers (exact, prefix, regex; uri and method always match, query
//     parameters never), split over the route's destinations by weight (a lone one without
//     a weight takes all); a destination is a Service of the namespace, narrowed to the
//     pods a DestinationRule subset's labels select when it names a subset.
//
// Requests nothing routes (a missing entry object, no matching rule, no backend with
// weight) get 404 with empty service and revision. A revision answers with the error share
// and latency its pods' annotations (AnnotationErrorRate, AnnotationLatency) give it; with
// AnnotationLatencySpread its latencies are log-normal around that median, drawn from a
// generator per entry point and backend seeded by Config.Seed, so a run is repeatable and
// Prometheus sees noisy per-revision latency in the request-duration histogram.
// Requests are deterministic: fractional requests and errors are carried from tick to
// tick, so a window holds the configured rate and error ratio to within one request. While
// reads fail, requests follow the last objects read, as a real data plane would.
//
// Metrics carry the entry point as "Kind/Name". Route is the routing alone, objects in and
// shares out, for table tests without a cluster.
package trafficsim
