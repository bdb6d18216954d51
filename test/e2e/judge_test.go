package e2e

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/trafficsim"
)

// The judge scenarios' apps and the requests per second each one's HTTPRoute gets. The two
// judging a 5% slowdown get enough for their canary's 20% to tell it apart every time.
var judgeApps = []struct {
	name string
	rps  float64
}{
	{"judge-slow", 50}, {"judge-same", 50}, {"judge-close", 400}, {"judge-strict", 400},
	{"judge-quiet", 50}, {"judge-baseline", 50}, {"judge-baseline-slow", 50},
}

// stableLatency is every app's stable revision: a median of 100 ms, log-normal spread 0.25.
var stableLatency = fixtures.Latency("100ms", "0.25")

// judgeApp creates app name: a Deployment of 5 pods answering at stableLatency, its
// Service and its HTTPRoute.
func (b *rolloutBed) judgeApp(t *testing.T, name string) {
	t.Helper()
	d := fixtures.Deployment(b.ns, name, 5)
	d.Spec.Template.Annotations = stableLatency
	b.create(t, d, fixtures.Service(b.ns, name), fixtures.HTTPRoute(b.ns, name))
}

// judgeRollout releases app with one judged step at traffic (1 new pod, the template's
// verdict decides) and then all of it; baseline, when above 0, runs that many fresh
// baseline pods at the judged step.
func (b *rolloutBed) judgeRollout(t *testing.T, app, template, traffic string, baseline int32) {
	t.Helper()
	step := v1alpha1.RolloutStep{
		Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To(traffic),
		Analysis: &v1alpha1.RolloutAnalysis{
			Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: template}},
			Args:      []v1alpha1.AnalysisRunArgument{{Name: "entry", Value: ptr.To(trafficsim.KindHTTPRoute + "/" + app)}},
		},
	}
	if baseline > 0 {
		step.Baseline = &v1alpha1.RolloutBaseline{Replicas: baseline}
	}
	b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
		Steps:           []v1alpha1.RolloutStep{step, {Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")}},
		TrafficRoutings: fixtures.GatewayRouting(app),
	}})
}

// release gives app a new revision answering at median latency, with stable's spread.
func (b *rolloutBed) release(t *testing.T, app, median string) {
	t.Helper()
	require.NoError(t, fixtures.SetBehaviour(context.Background(), b.Client, b.ns, app, "echoserver:green", fixtures.Latency(median, "0.25")))
}

// stepRun is the judged step's AnalysisRun once it has a verdict.
func (b *rolloutBed) stepRun(t *testing.T, app string) *v1alpha1.AnalysisRun {
	t.Helper()
	var runs v1alpha1.AnalysisRunList
	require.NoError(t, b.Client.List(context.Background(), &runs, client.InNamespace(b.ns), client.MatchingLabels{"promgate.io/rollout": app, "promgate.io/analysis": "step"}))
	require.Len(t, runs.Items, 1, "one judged step, one run")
	return &runs.Items[0]
}

// measuredRatio and measuredShift find the mean ratio and the shift's confidence interval
// in a judge measurement's value.
var (
	measuredRatio = regexp.MustCompile(`mean ratio (-?[\d.e+-]+)`)
	measuredShift = regexp.MustCompile(`shift \[(-?[\d.e+-]+), (-?[\d.e+-]+)\]`)
)

func meanRatio(t *testing.T, value string) float64 {
	t.Helper()
	t.Logf("measurement: %s", value)
	m := measuredRatio.FindStringSubmatch(value)
	require.NotNil(t, m, "no mean ratio in %q", value)
	return parseFloat(t, m[1])
}

// shiftLow is the lower bound of the shift canary - baseline.
func shiftLow(t *testing.T, value string) float64 {
	t.Helper()
	m := measuredShift.FindStringSubmatch(value)
	require.NotNil(t, m, "no shift in %q", value)
	return parseFloat(t, m[1])
}

func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// TestJudge releases canaries judged against their stable version, or a fresh baseline,
// on the traffic simulator's noisy latencies through the real Prometheus: a canary twice
// as slow fails and is aborted, one answering as stable does passes, one 5% slower passes
// an allowed increase of 1.2 and fails without it, one without traffic is never promoted,
// and with a fresh baseline the judge compares the canary with pods of the same age that
// the step starts and removes.
func TestJudge(t *testing.T) {
	var entries []trafficsim.Entry
	for _, app := range judgeApps {
		entries = append(entries, trafficsim.Entry{Kind: trafficsim.KindHTTPRoute, Name: app.name, RPS: app.rps})
	}
	b := startRolloutBed(t, trafficsim.Config{Entries: entries, Seed: 14})
	b.create(t,
		fixtures.LatencyJudgeTemplate(b.ns, "judge-vs-stable", "stable-hash", nil),
		fixtures.LatencyJudgeTemplate(b.ns, "judge-vs-stable-tolerant", "stable-hash", ptr.To(1.2)),
		fixtures.LatencyJudgeTemplate(b.ns, "judge-vs-baseline", "baseline-hash", nil),
	)
	for _, app := range judgeApps {
		b.judgeApp(t, app.name)
	}

	t.Run("a canary twice as slow is judged Failed and aborted", func(t *testing.T) {
		t.Parallel()
		const app = "judge-slow"
		b.judgeRollout(t, app, "judge-vs-stable", "20%", 0)
		b.release(t, app, "200ms")
		ro := b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted)
		require.Equal(t, v1alpha1.RolloutPhaseAborted, ro.Status.Phase, "%s", b.explain(t, ro))
		assert.Contains(t, ro.Status.AbortReason, "step 1 analysis")
		assert.Contains(t, ro.Status.AbortReason, `"latency" Failed`)
		run := b.stepRun(t, app)
		assert.Equal(t, v1alpha1.AnalysisPhaseFailed, run.Status.Phase)
		require.NotEmpty(t, run.Status.MetricResults[0].Measurements)
		value := run.Status.MetricResults[0].Measurements[0].Value
		assert.Regexp(t, `^score 0 \(Fail\); latency-mean: High, shift \[0\.\d+, 0\.\d+\], medians canary 0\.\d+ baseline 0\.\d+, mean ratio`, value)
		assert.InDelta(t, 2, meanRatio(t, value), 0.25, "%s", value)
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app), "all traffic back on stable")
		require.NotNil(t, ro.Status.Report)
		assert.Equal(t, v1alpha1.DecidedByAnalysis, ro.Status.Report.DecidedBy)
	})

	t.Run("a canary answering as stable does passes", func(t *testing.T) {
		t.Parallel()
		const app = "judge-same"
		b.judgeRollout(t, app, "judge-vs-stable", "20%", 0)
		b.release(t, app, "100ms")
		ro := b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted, v1alpha1.RolloutPhasePaused)
		require.Equal(t, v1alpha1.RolloutPhaseCompleted, ro.Status.Phase, "%s", b.explain(t, ro))
		run := b.stepRun(t, app)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, run.Status.Phase)
		for _, m := range run.Status.MetricResults[0].Measurements {
			assert.Regexp(t, `^score 100 \(Pass\); latency-mean: Pass`, m.Value)
			assert.InDelta(t, 1, meanRatio(t, m.Value), 0.1, "%s", m.Value)
		}
	})

	t.Run("a canary 5% slower passes an allowed increase of 1.2", func(t *testing.T) {
		t.Parallel()
		const app = "judge-close"
		b.judgeRollout(t, app, "judge-vs-stable-tolerant", "20%", 0)
		b.release(t, app, "105ms")
		ro := b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted, v1alpha1.RolloutPhasePaused)
		require.Equal(t, v1alpha1.RolloutPhaseCompleted, ro.Status.Phase, "%s", b.explain(t, ro))
		for _, m := range b.stepRun(t, app).Status.MetricResults[0].Measurements {
			assert.Regexp(t, `^score 100 \(Pass\); latency-mean: Pass`, m.Value)
			assert.Greater(t, shiftLow(t, m.Value), 0.0, "the canary is significantly slower: %s", m.Value)
			assert.Less(t, meanRatio(t, m.Value), 1.2, "but within what is allowed: %s", m.Value)
		}
	})

	t.Run("a canary 5% slower fails with no increase allowed", func(t *testing.T) {
		t.Parallel()
		const app = "judge-strict"
		b.judgeRollout(t, app, "judge-vs-stable", "20%", 0)
		b.release(t, app, "105ms")
		ro := b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted, v1alpha1.RolloutPhasePaused)
		require.Equal(t, v1alpha1.RolloutPhaseAborted, ro.Status.Phase, "%s", b.explain(t, ro))
		ms := b.stepRun(t, app).Status.MetricResults[0].Measurements
		value := ms[len(ms)-1].Value
		assert.Regexp(t, `^score 0 \(Fail\); latency-mean: High`, value)
		assert.InDelta(t, 1.05, meanRatio(t, value), 0.03, "%s", value)
	})

	t.Run("a canary without traffic has no data and is never promoted", func(t *testing.T) {
		t.Parallel()
		const app = "judge-quiet"
		b.judgeRollout(t, app, "judge-vs-stable", "0%", 0)
		b.release(t, app, "100ms")
		ro := b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted, v1alpha1.RolloutPhasePaused)
		require.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase, "%s", b.explain(t, ro))
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex)
		assert.Equal(t, v1alpha1.StepPaused, ro.Status.CurrentStepState)
		assert.Contains(t, ro.Status.Message, "inconclusive")
		run := b.stepRun(t, app)
		assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, run.Status.Phase)
		assert.Contains(t, run.Status.MetricResults[0].Measurements[0].Value, "no data; latency-mean: NoData, no canary data")
		// Nothing moves it on: no promotion on no data.
		time.Sleep(10 * time.Second)
		ro = b.get(t, app)
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase)
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex, "still at step 1")
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app))
	})

	t.Run("a fresh baseline is judged against, and goes with its step", func(t *testing.T) {
		t.Parallel()
		const app = "judge-baseline"
		b.judgeRollout(t, app, "judge-vs-baseline", "20%", 2)
		stable := b.get(t, app).Status.StableRevision
		b.release(t, app, "100ms")
		ro := b.waitStep(t, app, 1, v1alpha1.StepMetricsAnalysis, 2*time.Minute)
		base, green := ro.Status.BaselineRevision, ro.Status.CanaryRevision
		require.NotEmpty(t, base)
		assert.NotEqual(t, stable, base)
		assert.Equal(t, []map[string]int32{{app: 60, app + "-canary": 20, app + "-baseline": 20}}, b.routeWeights(t, app), "the baseline gets the canary's share")
		assert.Equal(t, map[string]int{stable: 5, green: 1, base: 2}, b.pods(t, app), "two baseline pods of the stable template beside the canary's")
		var rs appsv1.ReplicaSet
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: app + "-baseline"}, &rs))
		assert.Equal(t, "Rollout", rs.OwnerReferences[0].Kind, "owned by the Rollout, not adopted by the Deployment")
		assert.Equal(t, withHash(map[string]string{"app": app}, stable), b.selector(t, app), "the stable Service keeps to the stable pods")
		b.assertEndpointsOnly(t, app, stable)
		b.assertEndpointsOnly(t, app+"-baseline", base)
		require.Eventually(t, func() bool {
			split := b.sim.Snapshot().Entry(trafficsim.KindHTTPRoute, app).All
			return math.Abs(split[trafficsim.Backend{Service: app + "-baseline", Revision: base}]-0.2) < 1e-9 &&
				math.Abs(split[trafficsim.Backend{Service: app, Revision: stable}]-0.6) < 1e-9
		}, 10*time.Second, 100*time.Millisecond, "the simulator sends the baseline its 20%")

		ro = b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted, v1alpha1.RolloutPhasePaused)
		require.Equal(t, v1alpha1.RolloutPhaseCompleted, ro.Status.Phase, "%s", b.explain(t, ro))
		run := b.stepRun(t, app)
		assert.Contains(t, run.Spec.Args, v1alpha1.Argument{Name: "baseline-hash", Value: ptr.To(base)}, "the judge compared with the baseline")
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, run.Status.Phase)
		assert.Empty(t, ro.Status.BaselineRevision)
		assert.True(t, b.absent(t, &appsv1.ReplicaSet{}, app+"-baseline"), "the baseline ReplicaSet went with its step")
		assert.True(t, b.absent(t, &corev1.Service{}, app+"-baseline"), "and its Service")
		require.Eventually(t, func() bool { return b.pods(t, app)[base] == 0 }, time.Minute, 100*time.Millisecond, "and its pods")
	})

	t.Run("a canary twice as slow as a fresh baseline is aborted and the baseline removed", func(t *testing.T) {
		t.Parallel()
		const app = "judge-baseline-slow"
		b.judgeRollout(t, app, "judge-vs-baseline", "20%", 2)
		b.release(t, app, "200ms")
		ro := b.waitPhase(t, app, 3*time.Minute, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCompleted)
		require.Equal(t, v1alpha1.RolloutPhaseAborted, ro.Status.Phase, "%s", b.explain(t, ro))
		value := b.stepRun(t, app).Status.MetricResults[0].Measurements[0].Value
		assert.Regexp(t, `^score 0 \(Fail\); latency-mean: High`, value)
		assert.Empty(t, ro.Status.BaselineRevision)
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app), "all traffic back on stable")
		assert.True(t, b.absent(t, &appsv1.ReplicaSet{}, app+"-baseline"))
		assert.True(t, b.absent(t, &corev1.Service{}, app+"-baseline"))
	})
}

// assertEndpointsOnly checks that Service svc's EndpointSlices hold ready pods of revision
// rev alone, as a data plane sees them.
func (b *rolloutBed) assertEndpointsOnly(t *testing.T, svc, rev string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var slices discoveryv1.EndpointSliceList
		var pods corev1.PodList
		if b.Client.List(context.Background(), &slices, client.InNamespace(b.ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}) != nil ||
			b.Client.List(context.Background(), &pods, client.InNamespace(b.ns)) != nil {
			return false
		}
		revOf := map[string]string{}
		for _, p := range pods.Items {
			revOf[p.Name] = p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
		n := 0
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.TargetRef == nil || revOf[ep.TargetRef.Name] != rev {
					return false
				}
				n++
			}
		}
		return n > 0
	}, 20*time.Second, 100*time.Millisecond, fmt.Sprintf("the EndpointSlices of %s hold pods of %s only", svc, rev))
}
