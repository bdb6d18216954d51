package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
)

// release is a 2-replica app and the Rollout ro over it on the bench's bed, adopted.
type release struct {
	b   *testing.B
	c   client.Client
	key client.ObjectKey
}

// startRelease creates the app of ro's name, extra objects and ro, and waits for the
// Rollout to adopt the Deployment.
func startRelease(b *testing.B, c client.Client, ro *v1alpha1.Rollout, extra ...client.Object) *release {
	b.Helper()
	objs := append(fixtures.App(ro.Namespace, ro.Name, 2), extra...)
	for _, o := range append(objs, ro) {
		if err := c.Create(context.Background(), o); err != nil {
			b.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	r := &release{b: b, c: c, key: client.ObjectKeyFromObject(ro)}
	r.waitFor("the Rollout to adopt the Deployment", func() bool { return r.rollout().Status.Phase == v1alpha1.RolloutPhaseHealthy })
	return r
}

func (r *release) rollout() *v1alpha1.Rollout {
	var ro v1alpha1.Rollout
	if err := r.c.Get(context.Background(), r.key, &ro); err != nil {
		r.b.Fatal(err)
	}
	return &ro
}

// waitFor polls cond for a minute, failing the benchmark with the Rollout's status.
func (r *release) waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			r.b.Fatalf("timed out waiting for %s; Rollout status: %+v", what, r.rollout().Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newTemplate gives the Deployment a new image: a new release.
func (r *release) newTemplate(image string) {
	// Right after adoption the Deployment controller is still writing the Deployment.
	if err := fixtures.SetTemplate(context.Background(), r.c, r.key.Namespace, r.key.Name, image, "0"); err != nil {
		r.b.Fatal(err)
	}
}

// routeWeight follows the canary's weight in the HTTPRoutes through a watch and stamps
// each drop to 0 with the time it was received.
type routeWeight struct {
	mu     sync.Mutex
	canary int32
	zeroAt time.Time
}

func watchRouteWeight(b *testing.B, cfg *rest.Config, ns, canaryService string) *routeWeight {
	b.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testbed.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	routes, err := wc.Watch(ctx, &gatewayv1.HTTPRouteList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	w := &routeWeight{}
	go func() {
		for ev := range routes.ResultChan() {
			at := time.Now()
			route, ok := ev.Object.(*gatewayv1.HTTPRoute)
			if !ok {
				continue
			}
			weight := canaryWeight(route, canaryService)
			w.mu.Lock()
			if weight == 0 && w.canary > 0 {
				w.zeroAt = at
			}
			w.canary = weight
			w.mu.Unlock()
		}
	}()
	return w
}

// weight is the canary's weight in the HTTPRoute last received.
func (w *routeWeight) weight() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.canary
}

// zeroSince is when the canary's weight was last seen dropping to 0, if after t; else zero.
func (w *routeWeight) zeroSince(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.zeroAt.After(t) {
		return w.zeroAt
	}
	return time.Time{}
}

// canaryWeight is the weight of the canary Service's backendRefs; 0 when it has none.
func canaryWeight(route *gatewayv1.HTTPRoute, canaryService string) int32 {
	var weight int32
	for _, rule := range route.Spec.Rules {
		for _, ref := range rule.BackendRefs {
			if string(ref.Name) == canaryService {
				weight = max(weight, ptr.Deref(ref.Weight, 1))
			}
		}
	}
	return weight
}

// reportLatencies reports the p50, p99 and largest of latencies in milliseconds, and
// their count as aborts, and returns the three.
func reportLatencies(b *testing.B, latencies []time.Duration) (p50, p99, worst float64) {
	slices.Sort(latencies)
	ms := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(latencies)))) - 1
		return float64(latencies[max(i, 0)].Microseconds()) / 1000
	}
	p50, p99, worst = ms(0.50), ms(0.99), ms(1)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(worst, "max-ms")
	b.ReportMetric(float64(len(latencies)), "aborts")
	return p50, p99, worst
}
