package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/install"
	"github.com/promgate/promgate/test/testbed"
)

// failoverKills is how many leaders each lease setting kills.
const failoverKills = 10

// leaseSettings are the leader election timings a failover is measured with.
type leaseSettings struct {
	name                string
	lease, renew, retry time.Duration
	chartValues         []string
}

// BenchmarkLeaderFailover times how long a release waits when its controller's leader dies.
// Two replicas of the installed controller (the chart's rendering, run as its
// ServiceAccount) elect a leader; a release waits at a pause for a human; the leader is
// killed (SIGKILL: it cannot release its lease) and at once a human jumps the release to
// the other step. Measured from the kill: the new leader's first finished Rollout
// reconcile (its reconcile counter leaving 0), and the release's next step transition
// (status at the step jumped to). failoverKills kills per setting, the killed replica
// started again as the standby each time. Target: the next step within the lease duration
// plus one reconcile.
func BenchmarkLeaderFailover(b *testing.B) {
	for _, s := range []leaseSettings{
		{name: "lease=15s", lease: 15 * time.Second, renew: 10 * time.Second, retry: 2 * time.Second},
		{name: "lease=5s", lease: 5 * time.Second, renew: 3 * time.Second, retry: time.Second,
			chartValues: []string{"--set", "leaderElection.leaseDuration=5s,leaderElection.renewDeadline=3s,leaderElection.retryPeriod=1s"}},
	} {
		b.Run(s.name, func(b *testing.B) { benchFailover(b, s) })
	}
}

func benchFailover(b *testing.B, s leaseSettings) {
	const app = "failover"
	ctx := context.Background()
	c := testbed.StartCluster(b)
	objs, err := install.Helm(ctx, s.chartValues...)
	if err != nil {
		b.Fatal(err)
	}
	in := fixtures.InstallRendering(b, c, objs)
	pgs := []*testbed.Promgate{in.StartController(b, "promgate-a"), in.StartController(b, "promgate-b")}

	// Both steps run the same pods, so a jump moves traffic only and times the controller,
	// not the Deployment controller.
	ro := fixtures.Rollout("default", app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
		Steps: []v1alpha1.RolloutStep{
			{Replicas: fixtures.Replicas("1"), Traffic: ptr.To("10%"), Pause: fixtures.Pause(0)},
			{Replicas: fixtures.Replicas("1"), Traffic: ptr.To("20%"), Pause: fixtures.Pause(0)},
		},
		TrafficRoutings: fixtures.GatewayRouting(app),
	}})
	r := startRelease(b, c.Client, ro)
	r.newTemplate("echoserver:green")
	pausedAt := func(step int32) func() bool {
		return func() bool {
			st := r.rollout().Status
			return st.Phase == v1alpha1.RolloutPhasePaused && st.CurrentStepIndex == step && st.CurrentStepState == v1alpha1.StepPaused
		}
	}
	r.waitFor("step 1 paused", pausedAt(1))

	takeovers := make([]time.Duration, 0, failoverKills)
	steps := make([]time.Duration, 0, failoverKills)
	b.ResetTimer()
	for range failoverKills {
		target := 3 - r.rollout().Status.CurrentStepIndex
		leader := fixtures.WaitLeader(b, time.Minute, pgs...)
		standby := pgs[1-leader]
		pgs[leader].Kill()
		killed := time.Now()
		// The human's jump, as `kubectl patch --subresource=status` sends it: only a leader
		// can act on it.
		if err := c.Client.Status().Patch(ctx, r.rollout(), client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"status":{"nextStepIndex":%d}}`, target))); err != nil {
			b.Fatal(err)
		}
		var tookOver, stepped time.Time
		deadline := killed.Add(s.lease + time.Minute)
		for tookOver.IsZero() || stepped.IsZero() {
			if time.Now().After(deadline) {
				b.Fatalf("no takeover (%v) or no step %d (%v) within a minute past the lease; Rollout status: %+v", tookOver, target, stepped, r.rollout().Status)
			}
			if tookOver.IsZero() {
				if n, err := fixtures.Reconciles(standby, "rollout"); err == nil && n > 0 {
					tookOver = time.Now()
				}
			}
			if stepped.IsZero() && r.rollout().Status.CurrentStepIndex == target {
				stepped = time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		takeovers = append(takeovers, tookOver.Sub(killed))
		steps = append(steps, stepped.Sub(killed))
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := pgs[leader].Restart(rctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		r.waitFor(fmt.Sprintf("step %d paused", target), pausedAt(target))
	}
	b.StopTimer()

	tp50, tmax := quantileMs(takeovers, 0.5), quantileMs(takeovers, 1)
	sp50, smax := quantileMs(steps, 0.5), quantileMs(steps, 1)
	b.ReportMetric(tp50, "takeover-p50-ms")
	b.ReportMetric(tmax, "takeover-max-ms")
	b.ReportMetric(sp50, "step-p50-ms")
	b.ReportMetric(smax, "step-max-ms")
	b.ReportMetric(s.lease.Seconds(), "lease-s")
	b.ReportMetric(float64(len(steps)), "kills")
	fmt.Printf("leader failover: lease %s, renew deadline %s, retry period %s; leader killed with SIGKILL, n=%d\n", s.lease, s.renew, s.retry, len(steps))
	fmt.Printf("  kill -> first reconcile by the new leader: p50 %8.1f ms, max %8.1f ms\n", tp50, tmax)
	fmt.Printf("  kill -> the release's next step:           p50 %8.1f ms, max %8.1f ms  (target: lease + one reconcile, %s)\n", sp50, smax, s.lease)
}

// quantileMs is the q-quantile of ds (nearest rank) in milliseconds.
func quantileMs(ds []time.Duration, q float64) float64 {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return float64(sorted[max(i, 0)].Microseconds()) / 1000
}
