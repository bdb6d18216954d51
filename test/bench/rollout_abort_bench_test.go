package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
)

// aborts is how many failed analyses the benchmark times.
const aborts = 100

// BenchmarkAbortRestoresTraffic times how long traffic stays on a new version after its
// analysis fails: from the AnalysisRun observed Failed to the HTTPRoute observed with the
// canary's weight at 0, both seen through watches and stamped when received. A canary
// with 50% of the traffic is aborted, retried and aborted again, aborts times. Anchor,
// Argo Rollouts on a similar bed: 28 ms from a manual abort; the target is p99 < 50 ms.
func BenchmarkAbortRestoresTraffic(b *testing.B) {
	cl := fixtures.StartBed(b, fixtures.BedOptions{})
	var failing atomic.Bool
	web := testbed.Serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v := 0.0
		if failing.Load() {
			v = 1
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value": %g}`, v)
	}))
	const app = "abort"
	ns := cl.Namespace
	ctx := context.Background()
	c := cl.Client
	r := startRelease(b, c,
		fixtures.Rollout(ns, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: fixtures.Replicas("1"), Traffic: ptr.To("50%"), Analysis: fixtures.Analysis(app)},
				{Replicas: fixtures.Replicas("100%"), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: fixtures.GatewayRouting(app),
		}}),
		&v1alpha1.AnalysisTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{{
				// No count: it measures every second until the first failure fails the run.
				Name:             "error-rate",
				Interval:         "1s",
				FailureLimit:     ptr.To(intstr.FromInt32(0)),
				SuccessCondition: "result < 0.05",
				Provider:         v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "http://" + web + "/", JSONPath: "{$.value}"}},
			}}},
		})
	rollout, waitFor := r.rollout, r.waitFor

	w := watchAborts(b, cl.Config, ns, app+"-canary")
	r.newTemplate("echoserver:green")

	latencies := make([]time.Duration, 0, aborts)
	b.ResetTimer()
	for i := range aborts {
		if i > 0 {
			failing.Store(false)
			// The human's retry, as `kubectl patch --subresource=status` sends it.
			if err := c.Status().Patch(ctx, rollout(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"nextStepIndex":1}}`))); err != nil {
				b.Fatal(err)
			}
		}
		var run string
		waitFor("step 1 measuring with 50% of the traffic", func() bool {
			st := rollout().Status
			run = st.AnalysisRuns.Step
			return st.Phase == v1alpha1.RolloutPhaseProgressing && st.CurrentStepIndex == 1 &&
				st.CurrentStepState == v1alpha1.StepMetricsAnalysis && run != "" && w.weight() == 50
		})
		armed := time.Now()
		failing.Store(true)
		var failed, zero time.Time
		waitFor("the run to fail and the canary's weight to reach 0", func() bool {
			failed, zero = w.abortedAt(run, armed)
			return !failed.IsZero() && !zero.IsZero()
		})
		// Negative when the route's event arrived first: both are receive times.
		latencies = append(latencies, zero.Sub(failed))
		waitFor("the release to be aborted", func() bool { return rollout().Status.Phase == v1alpha1.RolloutPhaseAborted })
	}
	b.StopTimer()

	p50, p99, worst := reportLatencies(b, latencies)
	fmt.Printf("abort: AnalysisRun seen Failed -> HTTPRoute seen with the canary at 0%%, n=%d\n", len(latencies))
	fmt.Printf("  p50 %7.1f ms\n  p99 %7.1f ms  (target < 50 ms; Argo Rollouts after a manual abort: 28 ms)\n  max %7.1f ms\n", p50, p99, worst)
}

// abortWatch follows the Rollout's AnalysisRuns and HTTPRoute through watches and stamps
// what it sees with the time it was received.
type abortWatch struct {
	*routeWeight
	mu       sync.Mutex
	failedAt map[string]time.Time
}

func watchAborts(b *testing.B, cfg *rest.Config, ns, canaryService string) *abortWatch {
	b.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testbed.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	runs, err := wc.Watch(ctx, &v1alpha1.AnalysisRunList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	w := &abortWatch{routeWeight: watchRouteWeight(b, cfg, ns, canaryService), failedAt: map[string]time.Time{}}
	go func() {
		for ev := range runs.ResultChan() {
			at := time.Now()
			run, ok := ev.Object.(*v1alpha1.AnalysisRun)
			if !ok || run.Status.Phase != v1alpha1.AnalysisPhaseFailed {
				continue
			}
			w.mu.Lock()
			if _, seen := w.failedAt[run.Name]; !seen {
				w.failedAt[run.Name] = at
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// abortedAt returns when run was first seen Failed and when the canary's weight was last
// seen dropping to 0 after armed; zero times for what has not been seen yet.
func (w *abortWatch) abortedAt(run string, armed time.Time) (failed, zero time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failedAt[run], w.zeroSince(armed)
}
