package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// routers are the traffic routers for the revisions in status.
func (s *state) routers() []traffic.Router {
	return traffic.ForRollout(s.c, s.ep, s.ro)
}

// routeAll sends weight percent of traffic, and every request matching matches, to the
// new version on every routing. A *traffic.NotReadyError says a Service's EndpointSlices
// do not hold the new pods yet.
func (s *state) routeAll(ctx context.Context, weight int32, matches []v1alpha1.HTTPRouteMatch) error {
	if s.ro.Status.CanaryRevision == "" {
		return nil
	}
	for _, rt := range s.routers() {
		if err := rt.Route(ctx, weight, matches); err != nil {
			return fmt.Errorf("routing %d%% to the new version: %w", weight, err)
		}
	}
	return nil
}

// finishAll sends all traffic to winner on every routing; a *traffic.NotReadyError says
// a stable Service's EndpointSlices have not followed it yet, and finishAll is called
// again until they have.
func (s *state) finishAll(ctx context.Context, winner string) error {
	for _, rt := range s.routers() {
		if err := rt.Finish(ctx, winner); err != nil {
			return fmt.Errorf("sending all traffic to revision %s: %w", winner, err)
		}
	}
	return nil
}

func (s *state) unpinAll(ctx context.Context) error {
	for _, rt := range s.routers() {
		if err := rt.Unpin(ctx); err != nil {
			return fmt.Errorf("restoring Service selectors: %w", err)
		}
	}
	return nil
}

// grace is the longest gracePeriodSeconds of the routings: how long a step waits after
// its traffic moved, for proxies that follow the EndpointSlices late.
func (s *state) grace() time.Duration {
	st, _ := s.ro.Spec.Strategy.Active()
	if st == nil {
		return 0
	}
	var g int32
	for _, tr := range st.TrafficRoutings {
		g = max(g, tr.GracePeriodSeconds)
	}
	return time.Duration(g) * time.Second
}
