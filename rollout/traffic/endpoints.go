package traffic

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Endpoints tells whether the data plane can follow a traffic change yet. A proxy reaches
// a Service through its EndpointSlices, which the endpointslice controller updates after
// a selector or pod change, asynchronously: weight given to a Service whose slices hold no
// ready endpoint is answered 503, and a route restored before the stable Service's slices
// dropped the old pods sends requests back to the old version.
type Endpoints interface {
	// Only returns nil when the EndpointSlices of Service svc hold at least one ready
	// endpoint, all of them pods podSelector selects (the pods of revision rev), and a
	// *NotReadyError otherwise.
	Only(ctx context.Context, svc client.ObjectKey, podSelector map[string]string, rev string) error
	// Serves returns nil when the EndpointSlices of Service svc hold at least one ready
	// endpoint that is a pod podSelector selects (of revision rev), whatever else they
	// hold, and a *NotReadyError otherwise: what a subset of a Service's endpoints, such as
	// an Istio DestinationRule subset, needs.
	Serves(ctx context.Context, svc client.ObjectKey, podSelector map[string]string, rev string) error
}

// NotReadyError says a traffic change waits for a Service's EndpointSlices. What it
// would have routed is unchanged; the caller tries again when the slices change.
type NotReadyError struct {
	Service, Revision string
	// Ready counts the ready endpoints that are pods of Revision, Others the other ready ones.
	Ready, Others int
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("waiting for the EndpointSlices of Service %s to hold ready endpoints of revision %s only (%d ready of it, %d of other pods)",
		e.Service, e.Revision, e.Ready, e.Others)
}

// SliceEndpoints reads EndpointSlices and Pods from the API server.
type SliceEndpoints struct {
	// Reader must not be a cache: a view one update behind is the lag this check is for.
	Reader client.Reader
}

// Only implements Endpoints.
func (e SliceEndpoints) Only(ctx context.Context, svc client.ObjectKey, podSelector map[string]string, rev string) error {
	nr, err := e.count(ctx, svc, podSelector, rev)
	if err != nil {
		return err
	}
	if nr.Ready == 0 || nr.Others > 0 {
		return nr
	}
	return nil
}

// Serves implements Endpoints.
func (e SliceEndpoints) Serves(ctx context.Context, svc client.ObjectKey, podSelector map[string]string, rev string) error {
	nr, err := e.count(ctx, svc, podSelector, rev)
	if err != nil {
		return err
	}
	if nr.Ready == 0 {
		return nr
	}
	return nil
}

// count counts the ready endpoints of Service svc that are pods podSelector selects, and
// the others.
func (e SliceEndpoints) count(ctx context.Context, svc client.ObjectKey, podSelector map[string]string, rev string) (*NotReadyError, error) {
	ns, name := svc.Namespace, svc.Name
	var pods corev1.PodList
	if err := e.Reader.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(podSelector)); err != nil {
		return nil, fmt.Errorf("listing the pods of revision %s: %w", rev, err)
	}
	ofRev := make(map[string]bool, len(pods.Items))
	for _, p := range pods.Items {
		ofRev[p.Name] = true
	}
	var slices discoveryv1.EndpointSliceList
	if err := e.Reader.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
		return nil, fmt.Errorf("listing the EndpointSlices of Service %s: %w", name, err)
	}
	nr := &NotReadyError{Service: name, Revision: rev}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			// The API says a consumer takes an unknown readiness as ready.
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && ofRev[ep.TargetRef.Name] {
				nr.Ready++
			} else {
				nr.Others++
			}
		}
	}
	return nr, nil
}
