package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

// soakPause is the timed pause of the soak's last step.
const soakPause = 3 * time.Second

// soakSteps are the soak Rollout's steps: analysis at step 1, a human's approval at step
// 2 and a timed pause at step 3; without pauses, the same steps with none.
func soakSteps(pauses bool) []v1alpha1.RolloutStep {
	steps := []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"),
			Matches:  []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Name: "X-Canary", Value: "always"}}}},
			Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}},
		{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%")},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
	}
	if pauses {
		steps[1].Pause = &v1alpha1.RolloutPause{}
		steps[2].Pause = &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: soakPause}}
	}
	return steps
}

// soakKind is one kind of release the soak runs; they take turns.
type soakKind string

const (
	soakHealthy    soakKind = "healthy"
	soakFailing    soakKind = "failing"
	soakReverted   soakKind = "reverted mid-release"
	soakScaled     soakKind = "scaled mid-release"
	soakNoPauses   soakKind = "healthy without pauses"
	soakScaledDown soakKind = "scaled down mid-release"
)

var soakKinds = []soakKind{soakHealthy, soakFailing, soakReverted, soakScaled, soakNoPauses, soakScaledDown}

// TestSoak releases one Rollout SOAK_RELEASES times in a row (default 20), taking turns
// through healthy, failing, reverted and scaled releases with and without pauses, and
// asserts after each that it settled: the released (or kept) revision is stable, the
// Deployment has its own strategy back with every pod available, nothing promgate wrote
// is left but the adoption's annotations, and no simulated request found a Service
// without ready endpoints. Pods per revision are asserted at every step, and every timed
// pause lasted at least its duration.
func TestSoak(t *testing.T) {
	releases := 20
	if v := os.Getenv("SOAK_RELEASES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "SOAK_RELEASES")
		releases = n
	}
	const app = "soak"
	// The simulator reads the routing every 50 ms, so a moment of traffic going where it
	// must not (a Service without endpoints, the old version after completion) shows.
	b := startRolloutBed(t, trafficsim.Config{Tick: 50 * time.Millisecond, Entries: []trafficsim.Entry{
		{Kind: trafficsim.KindHTTPRoute, Name: app, RPS: 50, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1},
	}})
	orig := b.app(t, app)
	b.httpRoute(t, app)
	b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
		Steps: soakSteps(true), TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wc, err := client.NewWithWatch(b.Config, client.Options{Scheme: testbed.Scheme()})
	require.NoError(t, err)
	journal, err := trafficsim.StartJournal(ctx, wc, b.ns, &v1alpha1.RolloutList{})
	require.NoError(t, err)
	s := &soak{rolloutBed: b, app: app, orig: orig, selector: b.selector(t, app), route: b.routeWeights(t, app),
		watch: b.watchRollout(t, app), journal: journal}
	s.pauses = true
	for i := range releases {
		kind := soakKinds[i%len(soakKinds)]
		ok := t.Run(fmt.Sprintf("%02d %s", i+1, kind), func(t *testing.T) { s.release(t, i, kind) })
		if !ok {
			break
		}
	}
	s.assertPauses(t)
	s.assertDataPlane(t)
	if t.Failed() {
		fmt.Println(b.kubectl(t, "get", "rollouts,rs,pods,svc,endpointslices,deploy,analysisruns,httproutes", "-o", "wide"))
		fmt.Println(b.kubectl(t, "get", "events", "--sort-by=.lastTimestamp"))
	}
}

// soak is the state the releases carry from one to the next.
type soak struct {
	*rolloutBed
	app      string
	orig     *appsv1.Deployment
	selector map[string]string
	route    []map[string]int32
	watch    *rolloutWatch
	journal  *trafficsim.Journal
	// pauses says which steps the Rollout has now; replicas is the Deployment's size.
	pauses   bool
	replicas int32
}

func (s *soak) release(t *testing.T, i int, kind soakKind) {
	app := s.app
	if want := kind != soakNoPauses; want != s.pauses {
		s.setSteps(t, soakSteps(want))
		s.pauses = want
	}
	if s.replicas == 0 {
		s.replicas = 5
	}
	blue := s.get(t, app).Status.StableRevision
	errorRate := "0"
	if kind == soakFailing {
		errorRate = "0.3"
	}
	failedBefore := s.unroutable(t)
	image := fmt.Sprintf("echoserver:soak-%d", i+1)
	s.setTemplate(t, app, image, errorRate)
	n := s.replicas

	ro := s.waitFor(t, app, time.Minute, "the new release at step 1's analysis", func(ro *v1alpha1.Rollout) bool {
		st := ro.Status
		return st.CurrentStepIndex == 1 && st.CurrentStepState == v1alpha1.StepMetricsAnalysis && st.CanaryRevision != "" && st.CanaryRevision != blue
	})
	green := ro.Status.CanaryRevision
	s.waitPods(t, app, map[string]int{blue: int(n), green: 1})

	want := blue
	switch kind {
	case soakFailing:
		ro = s.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex)
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, s.routeWeights(t, app), "abort: all traffic on stable")
		s.revertTo(t, blue)
		s.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCancelled)
	case soakNoPauses:
		s.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseCompleted)
		want = green
	default:
		s.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
		half := (n + 1) / 2
		s.holdPods(t, map[string]int{blue: int(n), green: int(half)})
		switch kind {
		case soakReverted:
			s.revertTo(t, blue)
			s.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCancelled)
		case soakScaled, soakScaledDown:
			n = 8
			if kind == soakScaledDown {
				n = 3
			}
			s.scale(t, n)
			half = (n + 1) / 2
			s.holdPods(t, map[string]int{blue: int(n), green: int(half)})
			fallthrough
		default:
			s.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
			s.waitStep(t, app, 3, v1alpha1.StepPaused, time.Minute)
			s.waitPods(t, app, map[string]int{blue: int(n), green: int(n)})
			s.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
			want = green
		}
	}
	s.assertSettled(t, want, n)
	assert.Equal(t, failedBefore, s.unroutable(t), "no simulated request met a Service without ready endpoints")
	if n != 5 {
		// Back to the usual size between releases: the adopted Deployment scales as ever.
		s.scale(t, 5)
		s.waitPods(t, app, map[string]int{want: 5})
		n = 5
	}
	s.replicas = n
}

// revertTo puts the stable revision's image back, which cancels the release.
func (s *soak) revertTo(t *testing.T, blue string) {
	t.Helper()
	var rs appsv1.ReplicaSetList
	require.NoError(t, s.Client.List(context.Background(), &rs, client.InNamespace(s.ns), client.MatchingLabels{appsv1.DefaultDeploymentUniqueLabelKey: blue}))
	require.Len(t, rs.Items, 1)
	c := rs.Items[0].Spec.Template.Spec.Containers[0]
	s.setTemplate(t, s.app, c.Image, rs.Items[0].Spec.Template.Annotations[trafficsim.AnnotationErrorRate])
}

func (s *soak) setSteps(t *testing.T, steps []v1alpha1.RolloutStep) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ro := s.get(t, s.app)
		ro.Spec.Strategy.Canary.Steps = steps
		return s.Client.Update(context.Background(), ro)
	}))
}

func (s *soak) scale(t *testing.T, n int32) {
	t.Helper()
	s.kubectl(t, "scale", "deployment", s.app, "--replicas="+strconv.Itoa(int(n)))
}

// holdPods waits for the ready pods per revision to be exactly want, then checks they
// stay so for two seconds: a split the Deployment controller grows past the step's shows
// up within that.
func (s *soak) holdPods(t *testing.T, want map[string]int) {
	t.Helper()
	s.waitPods(t, s.app, want)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var list appsv1.ReplicaSetList
		require.NoError(t, s.Client.List(context.Background(), &list, client.InNamespace(s.ns), client.MatchingLabels{"app": s.app}))
		for _, rs := range list.Items {
			hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			assert.Equal(t, int32(want[hash]), ptr.Deref(rs.Spec.Replicas, 0), "ReplicaSet %s holds the step's split", rs.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertSettled waits for the release to settle on revision want and checks that nothing
// of it is left.
func (s *soak) assertSettled(t *testing.T, want string, n int32) {
	t.Helper()
	app := s.app
	ro := s.waitFor(t, app, time.Minute, "settled", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CanaryRevision == "" && strings.HasPrefix(ro.Status.Message, "Rollout progressing has been")
	})
	assert.Equal(t, want, ro.Status.StableRevision, "the released (or kept) revision is stable")
	var d appsv1.Deployment
	require.Eventually(t, func() bool {
		require.NoError(t, s.Client.Get(context.Background(), client.ObjectKeyFromObject(s.orig), &d))
		st := d.Status
		return st.ObservedGeneration >= d.Generation && st.Replicas == n && st.UpdatedReplicas == n && st.AvailableReplicas == n
	}, time.Minute, 100*time.Millisecond, "every pod of the Deployment available: %+v", d.Status)
	assert.Equal(t, s.orig.Spec.Strategy, d.Spec.Strategy, "the Deployment's own strategy is back")
	assert.Equal(t, s.orig.Spec.MinReadySeconds, d.Spec.MinReadySeconds)
	assert.Equal(t, s.orig.Spec.ProgressDeadlineSeconds, d.Spec.ProgressDeadlineSeconds)
	assert.True(t, d.Spec.Paused, "adopted, the Deployment waits for the next release")
	for k := range d.Annotations {
		if strings.HasPrefix(k, "promgate.io/") {
			assert.Contains(t, []string{"promgate.io/original-deployment", "promgate.io/rollout"}, k, "only the adoption's annotations are left")
		}
	}
	assert.Equal(t, map[string]int{want: int(n)}, s.pods(t, app), "only the winner's pods run")
	var svc corev1.Service
	require.NoError(t, s.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: app}, &svc))
	assert.Equal(t, s.selector, svc.Spec.Selector, "the Service's own selector is back")
	assert.NotContains(t, svc.Annotations, "promgate.io/original-selector")
	assert.True(t, s.absent(t, &corev1.Service{}, app+"-canary"), "the canary Service is gone")
	var route gatewayv1.HTTPRoute
	require.NoError(t, s.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: app}, &route))
	assert.Equal(t, s.route, s.routeWeights(t, app), "the HTTPRoute's own rules are back")
	assert.NotContains(t, route.Annotations, "promgate.io/original-rules")
}

// assertDataPlane replays the routing after every write the soak made, in the API
// server's order, as a data plane following each change at once would route, and checks
// that no moment of it sent requests to a Service without ready endpoints, to the old
// version once its release completed, or to the new one once its release aborted.
func (s *soak) assertDataPlane(t *testing.T) {
	t.Helper()
	require.NoError(t, s.journal.Err())
	entry := trafficsim.Entry{Kind: trafficsim.KindHTTPRoute, Name: s.app, RPS: 1, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1}
	var phase v1alpha1.RolloutPhase
	var stable, canary string
	writes, violations := map[string]int{}, 0
	s.journal.Replay([]trafficsim.Entry{entry}, func(w trafficsim.Write, snap trafficsim.Snapshot) {
		writes[w.Kind]++
		if ro, ok := w.Object.(*v1alpha1.Rollout); ok && ro.Name == s.app {
			phase, stable, canary = ro.Status.Phase, ro.Status.StableRevision, ro.Status.CanaryRevision
		}
		for b, share := range snap.Entry(entry.Kind, entry.Name).All {
			if share == 0 {
				continue
			}
			var bad string
			switch {
			case b.Service != "" && b.Revision == "":
				bad = "to a Service without ready endpoints"
			case phase == v1alpha1.RolloutPhaseCompleted && canary != "" && b.Revision == stable:
				bad = "back to the old version after the release completed"
			case phase == v1alpha1.RolloutPhaseAborted && b.Revision == canary:
				bad = "to the new version after the release aborted"
			}
			if bad != "" {
				violations++
				if violations <= 10 {
					t.Errorf("after %s %s (resourceVersion %d, seen %s), %.0f%% of requests went %s through Service %s",
						w.Kind, w.Name, w.ResourceVersion, w.Seen.Format(time.StampMicro), share*100, bad, b.Service)
				}
			}
		}
	})
	t.Logf("data plane replayed after every write (%v): %d violations", writes, violations)
	assert.NotZero(t, writes["v1.HTTPRoute"], "the journal recorded the releases")
}

// unroutable counts the simulated requests to the soak's route that reached a Service
// without a ready endpoint.
func (s *soak) unroutable(t *testing.T) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.sim.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	require.NoError(t, err)
	var n float64
	for _, m := range families["promgate_sim_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["entry"] == "HTTPRoute/"+s.app && labels["code"] == "503" {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// assertPauses checks every timed pause the Rollout went through: it lasted at least its
// duration and at most a second more, counted from the precise times in status.
func (s *soak) assertPauses(t *testing.T) {
	t.Helper()
	var versions []v1alpha1.Rollout
	for _, v := range s.watch.stop() {
		versions = append(versions, *v.ro)
	}
	pauses, subSecond := 0, false
	for i, v := range versions {
		if v.Status.CurrentStepIndex != 3 || v.Status.CurrentStepState != v1alpha1.StepPaused || v.Status.StepStartedAt == nil {
			continue
		}
		if i > 0 && versions[i-1].Status.CurrentStepState == v1alpha1.StepPaused && versions[i-1].Status.CurrentStepIndex == 3 {
			continue
		}
		start := v.Status.StepStartedAt.Time
		for _, next := range versions[i+1:] {
			st := next.Status
			if st.CurrentStepIndex == 3 && st.CurrentStepState == v1alpha1.StepPaused {
				continue
			}
			if st.StepStartedAt == nil {
				break
			}
			lasted := st.StepStartedAt.Sub(start)
			assert.GreaterOrEqual(t, lasted, soakPause, "a pause never ends early (started %s)", start)
			assert.Less(t, lasted, soakPause+time.Second, "a pause ends within a reconcile (started %s)", start)
			pauses++
			subSecond = subSecond || start.Nanosecond() != 0
			break
		}
	}
	if pauses > 0 {
		assert.True(t, subSecond, "status keeps pause starts to the microsecond, not the second")
	}
	t.Logf("%d timed pauses checked", pauses)
}

// rolloutWatch records every version of a Rollout the API server sends, and when.
type rolloutWatch struct {
	mu       sync.Mutex
	versions []seenRollout
	stop     func() []seenRollout
}

type seenRollout struct {
	ro *v1alpha1.Rollout
	at time.Time
}

func (w *rolloutWatch) all() []seenRollout {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seenRollout(nil), w.versions...)
}

func (b *rolloutBed) watchRollout(t *testing.T, name string) *rolloutWatch {
	t.Helper()
	wc, err := client.NewWithWatch(b.Config, client.Options{Scheme: testbed.Scheme()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	w := &rolloutWatch{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var list v1alpha1.RolloutList
			watcher, err := wc.Watch(ctx, &list, client.InNamespace(b.ns), client.MatchingFields{"metadata.name": name})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range watcher.ResultChan() {
				if ro, ok := ev.Object.(*v1alpha1.Rollout); ok {
					w.mu.Lock()
					w.versions = append(w.versions, seenRollout{ro.DeepCopy(), time.Now()})
					w.mu.Unlock()
				}
			}
		}
	}()
	w.stop = sync.OnceValue(func() []seenRollout {
		cancel()
		<-done
		return w.all()
	})
	t.Cleanup(func() { w.stop() })
	return w
}
