package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
)

// restartBed is a rollout bed whose controller process the test kills and starts again.
// Analyses read a web endpoint the test sets, so no Prometheus and no traffic simulator run.
type restartBed struct {
	*rolloutBed
	web     *webValues
	webAddr string
}

// webValues answers GET /<name> with {"value": <the value set for name>}.
type webValues struct {
	mu sync.Mutex
	v  map[string]float64
}

func (w *webValues) set(name string, v float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.v[name] = v
}

func (w *webValues) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	v, ok := w.v[strings.TrimPrefix(r.URL.Path, "/")]
	w.mu.Unlock()
	if !ok {
		http.NotFound(rw, r)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]float64{"value": v})
}

func startRestartBed(t *testing.T) *restartBed {
	t.Helper()
	web := &webValues{v: map[string]float64{}}
	addr := testbed.Serve(t, web)
	fb := fixtures.StartBed(t, fixtures.BedOptions{})
	return &restartBed{rolloutBed: &rolloutBed{Cluster: fb.Cluster, pg: fb.Promgate, ns: fb.Namespace}, web: web, webAddr: addr}
}

// errorRateTemplate creates a template named name measuring /name on the web endpoint
// five times, two seconds apart; one value of 0.05 or more fails it.
func (b *restartBed) errorRateTemplate(t *testing.T, name string) {
	t.Helper()
	b.web.set(name, 0)
	b.create(t, &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.ns},
		Spec: v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{{
			Name:             "error-rate",
			Interval:         "2s",
			Count:            ptr.To(intstr.FromInt32(5)),
			SuccessCondition: "result < 0.05",
			Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{
				URL: "http://" + b.webAddr + "/" + name, JSONPath: "{$.value}",
			}},
		}}},
	})
}

// newRevision changes the Deployment's image. Unlike setTemplate it retries on conflicts:
// right after adoption the Deployment controller is still writing the Deployment's status.
func (b *restartBed) newRevision(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, fixtures.SetTemplate(context.Background(), b.Client, b.ns, name, "echoserver:green", "0"))
}

// restart kills the controller (SIGKILL, as a crash), leaves it down for down, starts it
// with the same flags and waits until it serves /readyz.
func (b *restartBed) restart(t *testing.T, down time.Duration) {
	t.Helper()
	b.pg.Kill()
	time.Sleep(down)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, b.pg.Restart(ctx), "the restarted controller never got ready; log %s", b.pg.LogPath)
}

// waitReconciled waits until the restarted controller has finished at least n Rollout
// reconciles. Its counters start at zero, so a Rollout whose status it leaves alone is
// known to have been looked at, not merely not reached yet.
func (b *restartBed) waitReconciled(t *testing.T, n float64) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(b.pg.MetricsURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			return false
		}
		var done float64
		for _, m := range families["controller_runtime_reconcile_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "rollout" {
					done += m.GetCounter().GetValue()
				}
			}
		}
		return done >= n
	}, 30*time.Second, 50*time.Millisecond, "the restarted controller never reconciled %v Rollouts", n)
}

// stepAt is one (step, state) of a release.
type stepAt struct {
	Step  int32
	State v1alpha1.StepState
}

func (s stepAt) String() string { return fmt.Sprintf("%d/%s", s.Step, s.State) }

// stepLog records every (step, state) a Rollout's status shows, polled every 50 ms.
type stepLog struct {
	mu   sync.Mutex
	seen []stepAt
	stop func()
}

func (b *restartBed) recordSteps(t *testing.T, name string) *stepLog {
	t.Helper()
	l := &stepLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var ro v1alpha1.Rollout
			if err := b.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: name}, &ro); err == nil && ro.Status.CurrentStepIndex > 0 {
				l.add(stepAt{ro.Status.CurrentStepIndex, ro.Status.CurrentStepState})
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	l.stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(l.stop)
	return l
}

func (l *stepLog) add(s stepAt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.seen); n == 0 || l.seen[n-1] != s {
		l.seen = append(l.seen, s)
	}
}

// states stops recording and returns the states seen, in order.
func (l *stepLog) states() []stepAt {
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stepAt(nil), l.seen...)
}

// assertWalk checks the states seen against the release's walk: in its order, none twice,
// so no step was repeated or gone back to. States one reconcile passes through are never
// written to status, so some may be missing, but the ones the controller was killed in
// must be there.
func assertWalk(t *testing.T, seen, walk, killedIn []stepAt) {
	t.Helper()
	t.Logf("states seen: %v", seen)
	i := 0
	for _, s := range seen {
		for i < len(walk) && walk[i] != s {
			i++
		}
		if !assert.Less(t, i, len(walk), "state %v is repeated or out of order; seen %v, walk %v", s, seen, walk) {
			return
		}
		i++
	}
	assert.Subset(t, seen, killedIn, "the states the controller was killed in")
}

// assertEvents checks the Events about the Rollout. A transition emitted again by the
// restarted controller is a second Event with the same reason and note (the recorder
// folds repeats into one Event only within one process); most bounds how many times each
// reason may occur in the whole release, and a reason not in it must not occur at all.
func (b *restartBed) assertEvents(t *testing.T, name string, most map[string]int32) {
	t.Helper()
	// Events are sent in the background: give the last ones time to arrive.
	time.Sleep(time.Second)
	var evs eventsv1.EventList
	require.NoError(t, b.Client.List(context.Background(), &evs, client.InNamespace(b.ns)))
	notes := map[string]int{}
	count := map[string]int32{}
	for _, e := range evs.Items {
		if e.Regarding.Kind != "Rollout" || e.Regarding.Name != name {
			continue
		}
		n := int32(1)
		if e.Series != nil {
			n = e.Series.Count
		}
		t.Logf("event %s x%d: %s", e.Reason, n, e.Note)
		count[e.Reason] += n
		notes[e.Reason+": "+e.Note]++
	}
	for note, n := range notes {
		assert.Equal(t, 1, n, "event %q emitted again after a restart", note)
	}
	for reason, n := range count {
		assert.LessOrEqual(t, n, most[reason], "%s events: the release has at most %d such transitions", reason, most[reason])
	}
}

// runsOf lists the Rollout's AnalysisRuns.
func (b *restartBed) runsOf(t *testing.T, name string) []v1alpha1.AnalysisRun {
	t.Helper()
	var runs v1alpha1.AnalysisRunList
	require.NoError(t, b.Client.List(context.Background(), &runs, client.InNamespace(b.ns), client.MatchingLabels{"promgate.io/rollout": name}))
	return runs.Items
}

// waitMeasured waits until the Rollout's step run has taken at least n measurements and
// returns it.
func (b *restartBed) waitMeasured(t *testing.T, name string, n int32) *v1alpha1.AnalysisRun {
	t.Helper()
	var run v1alpha1.AnalysisRun
	require.Eventually(t, func() bool {
		ro := b.get(t, name)
		if ro.Status.AnalysisRuns.Step == "" || b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: ro.Status.AnalysisRuns.Step}, &run) != nil {
			return false
		}
		return len(run.Status.MetricResults) == 1 && run.Status.MetricResults[0].Count >= n
	}, time.Minute, 50*time.Millisecond, "the step run of %s never took %d measurements", name, n)
	return &run
}

// TestRolloutControllerRestart kills the controller process (SIGKILL) while a release is
// in each step state and starts it again: the release goes on from its status, with no
// step repeated or skipped, no transition announced twice, the step's AnalysisRun kept
// rather than started afresh, and a failing analysis never promoted past.
func TestRolloutControllerRestart(t *testing.T) {
	b := startRestartBed(t)
	const grace = 3

	t.Run("a healthy release resumes in every step state", func(t *testing.T) {
		const app = "restart"
		b.errorRateTemplate(t, app)
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: app}}}},
				{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}, GracePeriodSeconds: grace}},
		}})
		log := b.recordSteps(t, app)
		var killedIn []stepAt

		// StepUpgrade: killed as soon as the release shows in status, while the Deployment
		// controller is still bringing up the first new pod.
		b.newRevision(t, app)
		var ro *v1alpha1.Rollout
		require.Eventually(t, func() bool {
			ro = b.get(t, app)
			return ro.Status.Phase == v1alpha1.RolloutPhaseProgressing
		}, 30*time.Second, 5*time.Millisecond)
		b.restart(t, 500*time.Millisecond)
		t.Logf("killed in %d/%s", ro.Status.CurrentStepIndex, ro.Status.CurrentStepState)
		killedIn = append(killedIn, stepAt{ro.Status.CurrentStepIndex, ro.Status.CurrentStepState})

		// StepTrafficRouting: the grace period counts from the state's start, not from the
		// restart, and is not cut short either.
		routing := b.waitStep(t, app, 1, v1alpha1.StepTrafficRouting, time.Minute)
		b.restart(t, time.Second)
		killedIn = append(killedIn, stepAt{1, v1alpha1.StepTrafficRouting})

		// StepMetricsAnalysis: the run measuring before the crash is the one that decides.
		before := b.waitMeasured(t, app, 1)
		ro = b.get(t, app)
		require.Equal(t, stepAt{1, v1alpha1.StepMetricsAnalysis}, stepAt{ro.Status.CurrentStepIndex, ro.Status.CurrentStepState})
		assert.GreaterOrEqual(t, ro.Status.StepStartedAt.Sub(routing.Status.StepStartedAt.Time), grace*time.Second,
			"the traffic grace period is served in full across the restart")
		t.Logf("traffic grace period served: %s", ro.Status.StepStartedAt.Sub(routing.Status.StepStartedAt.Time))
		assert.Equal(t, []map[string]int32{{app: 80, app + "-canary": 20}}, b.routeWeights(t, app))
		b.restart(t, 2500*time.Millisecond)
		killedIn = append(killedIn, stepAt{1, v1alpha1.StepMetricsAnalysis})

		// StepPaused: still waiting for a human after the restart.
		ro = b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
		runs := b.runsOf(t, app)
		require.Len(t, runs, 1, "one AnalysisRun for the release, not a second one after the restart")
		assert.Equal(t, before.UID, runs[0].UID, "the run measuring before the crash is the one that finished")
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, runs[0].Status.Phase, runs[0].Status.Message)
		assert.Equal(t, int32(5), runs[0].Status.MetricResults[0].Count, "five measurements, none repeated")
		b.restart(t, 500*time.Millisecond)
		killedIn = append(killedIn, stepAt{2, v1alpha1.StepPaused})
		b.waitReconciled(t, 1)
		ro = b.get(t, app)
		assert.Equal(t, stepAt{2, v1alpha1.StepPaused}, stepAt{ro.Status.CurrentStepIndex, ro.Status.CurrentStepState})
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase, "a pause {} waits for a human across a restart")
		assert.Equal(t, []map[string]int32{{app: 50, app + "-canary": 50}}, b.routeWeights(t, app))

		b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
		green := ro.Status.CanaryRevision
		require.Eventually(t, func() bool { return b.get(t, app).Status.StableRevision == green }, time.Minute, 100*time.Millisecond)

		walk := []stepAt{
			{1, v1alpha1.StepUpgrade}, {1, v1alpha1.StepTrafficRouting}, {1, v1alpha1.StepMetricsAnalysis}, {1, v1alpha1.StepReady},
			{2, v1alpha1.StepUpgrade}, {2, v1alpha1.StepTrafficRouting}, {2, v1alpha1.StepMetricsAnalysis}, {2, v1alpha1.StepPaused}, {2, v1alpha1.StepReady},
			{3, v1alpha1.StepUpgrade}, {3, v1alpha1.StepTrafficRouting}, {3, v1alpha1.StepMetricsAnalysis}, {3, v1alpha1.StepReady}, {3, v1alpha1.StepCompleted},
		}
		assertWalk(t, log.states(), walk, killedIn)
		assert.Len(t, b.runsOf(t, app), 1)
		// Step 2's StepReady is set by the human: the controller announces the others.
		b.assertEvents(t, app, map[string]int32{
			"Adopted": 1, "ReleaseStarted": 1, "StepUpgrade": 2, "StepPaused": 1, "Promoted": 1, "Settled": 1, "ReleaseReport": 1,
		})
	})

	t.Run("a failing analysis aborts across restarts and stays aborted", func(t *testing.T) {
		const app = "restart-bad"
		b.errorRateTemplate(t, app)
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("50%"), Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: app}}}},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
		}})
		log := b.recordSteps(t, app)
		b.newRevision(t, app)

		// The new version turns bad between two measurements and the controller dies before
		// the next one: the restarted controller measures it, fails the run, and aborts.
		before := b.waitMeasured(t, app, 1)
		b.web.set(app, 0.3)
		b.restart(t, 2500*time.Millisecond)
		ro := b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Equal(t, stepAt{1, v1alpha1.StepPaused}, stepAt{ro.Status.CurrentStepIndex, ro.Status.CurrentStepState}, "aborted releases go back to step 1")
		assert.Contains(t, ro.Status.AbortReason, `"error-rate"`, "the reason names the metric")
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app), "no traffic to the new version")
		runs := b.runsOf(t, app)
		require.Len(t, runs, 1, "one AnalysisRun, not a second one after the restart")
		assert.Equal(t, before.UID, runs[0].UID, "the run measuring before the crash is the one that failed")
		assert.Equal(t, v1alpha1.AnalysisPhaseFailed, runs[0].Status.Phase)

		// Aborted: a restart neither resumes nor restarts the release.
		b.restart(t, 500*time.Millisecond)
		b.waitReconciled(t, 2) // both Rollouts of the bed
		// Leave a wrong move (a new run, traffic back on) time to show.
		time.Sleep(time.Second)
		ro = b.get(t, app)
		assert.Equal(t, v1alpha1.RolloutPhaseAborted, ro.Status.Phase)
		assert.Equal(t, stepAt{1, v1alpha1.StepPaused}, stepAt{ro.Status.CurrentStepIndex, ro.Status.CurrentStepState})
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app))
		assert.Len(t, b.runsOf(t, app), 1, "no run started after the restart")

		walk := []stepAt{{1, v1alpha1.StepUpgrade}, {1, v1alpha1.StepTrafficRouting}, {1, v1alpha1.StepMetricsAnalysis}, {1, v1alpha1.StepPaused}}
		assertWalk(t, log.states(), walk, []stepAt{{1, v1alpha1.StepMetricsAnalysis}, {1, v1alpha1.StepPaused}})
		b.assertEvents(t, app, map[string]int32{
			"Adopted": 1, "ReleaseStarted": 1, "StepPaused": 1, "Aborted": 1, "ReleaseReport": 1,
		})
	})
}
