package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// machineSteps are three canary steps: one pod analysed then waiting for a human, half
// the pods for a timed pause, all of them.
func machineSteps() []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.Parse("1")), Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}, Pause: &v1alpha1.RolloutPause{}},
		{Replicas: ptr.To(intstr.Parse("50%")), Pause: &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: 30 * time.Second}}},
		{Replicas: ptr.To(intstr.Parse("100%"))},
	}
}

// machine is a cluster state the table starts from.
type machine struct {
	status v1alpha1.RolloutStatus
	// template is the Deployment's revision; blueRS and greenRS the replicas of the two
	// ReplicaSets (ready as many, or none of green's when unready), -1 for no ReplicaSet.
	template        string
	blueRS, greenRS int32
	unready         bool
	deployment      deploymentState
	// run, when set, is the phase of the step's AnalysisRun "web-run".
	run v1alpha1.AnalysisPhase
	// since is how long the state has lasted.
	since time.Duration
	// edit changes the Rollout before it is created; extra are more objects.
	edit  func(*v1alpha1.Rollout)
	extra []client.Object
}

// deploymentState is how promgate left the Deployment.
type deploymentState int

const (
	// heldOn is a release's hold: surge, nothing ever available, unpaused.
	heldOn deploymentState = iota
	// adopted is paused with the user's strategy, between releases.
	adopted
	// frozen is an aborted release's hold: paused.
	frozen
	// released runs the user's strategy, unpaused, to finish a release.
	released
)

// at is a release of green at step in state.
func at(step int32, state v1alpha1.StepState) v1alpha1.RolloutStatus {
	st := v1alpha1.RolloutStatus{
		Phase: v1alpha1.RolloutPhaseProgressing, StableRevision: blue, CanaryRevision: green,
		CurrentStepIndex: step, CurrentStepState: state,
	}
	for i := int32(1); i <= step; i++ {
		st.Steps = append(st.Steps, v1alpha1.StepRecord{Index: i, StartedAt: metav1.NewTime(time.Date(2026, 12, 1, 1, 0, int(i), 0, time.UTC))})
		if i < step {
			st.Steps[i-1].EndedAt = &metav1.Time{Time: time.Date(2026, 12, 1, 1, 0, int(i)+1, 0, time.UTC)}
			st.Steps[i-1].Verdict = "Successful"
		}
	}
	return st
}

func with(st v1alpha1.RolloutStatus, f func(*v1alpha1.RolloutStatus)) v1alpha1.RolloutStatus {
	f(&st)
	return st
}

// outcome is what the table expects of one pass.
type outcome struct {
	phase   v1alpha1.RolloutPhase
	step    int32
	state   v1alpha1.StepState
	message string
	// writes are the writes other than the Rollout's status, in order; nil means none.
	writes []string
	// check looks further at the cluster afterwards.
	check func(t *testing.T, k *fakeCluster)
}

func (m machine) cluster(t *testing.T) *fakeCluster {
	t.Helper()
	d := fakeDeployment(5, m.template)
	switch m.deployment {
	case heldOn:
		hold(d, max(m.greenRS, 1), false)
	case frozen:
		hold(d, max(m.greenRS, 1), true)
	case released:
		d.Spec.Paused = false
	}
	objs := append([]client.Object{d}, m.extra...)
	for i, rs := range []struct {
		rev      string
		replicas int32
	}{{blue, m.blueRS}, {green, m.greenRS}} {
		if rs.replicas >= 0 {
			r := fakeReplicaSet(d, rs.rev, rs.replicas, i+1)
			if rs.rev == green && m.unready {
				r.Status.ReadyReplicas = 0
			}
			objs = append(objs, r)
		}
	}
	objs = append(objs, &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "error-rate"},
		Spec: v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{{Name: "errors",
			Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "http://metrics/errors", JSONPath: "{$.value}"}}}}},
	})
	if m.run != "" {
		run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web-run"}}
		run.Status.Phase = m.run
		run.Status.Message = "errors: " + string(m.run)
		objs = append(objs, run)
	}
	st := m.status
	st.StepStartedAt = &metav1.MicroTime{Time: newFakeCluster(t).now.Add(-m.since)}
	ro := fakeRollout(machineSteps(), st)
	if m.edit != nil {
		m.edit(ro)
	}
	return newFakeCluster(t, append(objs, stored(t, ro))...)
}

func TestStepMachine(t *testing.T) {
	readyUpgrade := machine{template: green, blueRS: 5, greenRS: 1}
	tests := map[string]struct {
		in   machine
		want outcome
	}{
		"a new template starts a release and holds the Deployment": {
			machine{status: v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPhaseHealthy, StableRevision: blue}, template: green, blueRS: 5, greenRS: -1, deployment: adopted},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepUpgrade,
				message: "waiting for the Deployment controller to create the new ReplicaSet", writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					d := k.deployment()
					assert.False(t, d.Spec.Paused)
					assert.Equal(t, int32(holdMinReadySeconds), d.Spec.MinReadySeconds)
					assert.Equal(t, "1", d.Spec.Strategy.RollingUpdate.MaxSurge.String())
				}},
		},
		"StepUpgrade waits for the step's pods": {
			machine{status: at(1, v1alpha1.StepUpgrade), template: green, blueRS: 5, greenRS: 1, unready: true},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepUpgrade, message: "0/1 new pods ready"},
		},
		"StepTrafficRouting waits out the routing's grace period": {
			machine{status: at(1, v1alpha1.StepTrafficRouting), template: green, blueRS: 5, greenRS: 1, since: time.Second,
				edit: func(ro *v1alpha1.Rollout) {
					ro.Spec.Strategy.Canary.TrafficRoutings = []v1alpha1.TrafficRouting{{Service: "web", GracePeriodSeconds: 5}}
				},
				extra: []client.Object{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web"},
					Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}}},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepTrafficRouting, message: "traffic is 0% to the new version",
				writes: []string{"create Service web-canary", "update Service web"},
				check: func(t *testing.T, k *fakeCluster) {
					var svc corev1.Service
					require.NoError(t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web"}, &svc))
					assert.Equal(t, blue, svc.Spec.Selector["pod-template-hash"], "the stable Service stays on the stable pods")
				}},
		},
		"StepUpgrade with the pods ready goes on to the step's analysis and names its run": {
			readyUpgrade.withStatus(at(1, v1alpha1.StepUpgrade)),
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepMetricsAnalysis},
		},
		"StepMetricsAnalysis creates the run it named": {
			readyUpgrade.withStatus(with(at(1, v1alpha1.StepMetricsAnalysis), func(st *v1alpha1.RolloutStatus) { st.AnalysisRuns.Step = "web-step1" })),
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepMetricsAnalysis, message: "analysis web-step1 is measuring",
				writes: []string{"create AnalysisRun web-step1"}},
		},
		"a Successful run moves on to the step's pause": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseSuccessful),
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepPaused, message: "you need manually confirm"},
		},
		"an Inconclusive run pauses for a human": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseInconclusive),
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepPaused, message: "inconclusive"},
		},
		"a Failed run aborts to step 1 and pauses the Deployment": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseFailed),
			outcome{phase: v1alpha1.RolloutPhaseAborted, step: 1, state: v1alpha1.StepPaused, message: "aborted at step 1",
				writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					assert.True(t, k.deployment().Spec.Paused)
					assert.Equal(t, v1alpha1.RolloutPhaseAborted, k.rollout().Status.Report.Outcome)
				}},
		},
		"an Error run aborts too": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseError),
			outcome{phase: v1alpha1.RolloutPhaseAborted, step: 1, state: v1alpha1.StepPaused, message: "Error",
				writes: []string{"update Deployment web"}},
		},
		"a pause waits for its duration": {
			machine{status: at(2, v1alpha1.StepPaused), template: green, blueRS: 5, greenRS: 3, since: 10 * time.Second},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 2, state: v1alpha1.StepPaused, message: "paused for 30s"},
		},
		"a pause that ran out goes to the next step": {
			machine{status: at(2, v1alpha1.StepPaused), template: green, blueRS: 5, greenRS: 3, since: 31 * time.Second},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 3, state: v1alpha1.StepUpgrade, message: "3/5 new pods ready",
				writes: []string{"update Deployment web"}},
		},
		"a pause without duration waits for a human": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.Phase = v1alpha1.RolloutPhasePaused }),
				template: green, blueRS: 5, greenRS: 1, since: time.Hour},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepPaused},
		},
		"a human's approval (StepReady) goes to the next step": {
			machine{status: at(1, v1alpha1.StepReady), template: green, blueRS: 5, greenRS: 1},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 2, state: v1alpha1.StepUpgrade,
				writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					assert.Equal(t, v1alpha1.DecidedByHuman, k.rollout().Status.Steps[0].DecidedBy)
				}},
		},
		"the last step ready completes the release": {
			machine{status: at(3, v1alpha1.StepReady), template: green, blueRS: 5, greenRS: 5},
			outcome{phase: v1alpha1.RolloutPhaseCompleted, step: 3, state: v1alpha1.StepCompleted,
				writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					d := k.deployment()
					assert.Equal(t, userStrategy(), d.Spec.Strategy, "the Deployment's own strategy scales the old version away")
					assert.False(t, d.Spec.Paused)
				}},
		},
		"a completed release settles once the old version is gone": {
			machine{status: with(at(3, v1alpha1.StepCompleted), func(st *v1alpha1.RolloutStatus) { st.Phase = v1alpha1.RolloutPhaseCompleted }),
				template: green, blueRS: 0, greenRS: 5, deployment: released},
			outcome{phase: v1alpha1.RolloutPhaseCompleted, step: 3, state: v1alpha1.StepCompleted, message: "has been completed",
				writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					st := k.rollout().Status
					assert.Equal(t, green, st.StableRevision)
					assert.Empty(t, st.CanaryRevision)
					assert.True(t, k.deployment().Spec.Paused)
				}},
		},
		"abort": {
			machine{status: with(at(2, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.Abort = true }),
				template: green, blueRS: 5, greenRS: 3},
			outcome{phase: v1alpha1.RolloutPhaseAborted, step: 1, state: v1alpha1.StepPaused, message: "aborted by a human",
				writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					assert.False(t, k.rollout().Status.Abort, "the command is cleared")
					assert.Equal(t, "3", k.deployment().Spec.Strategy.RollingUpdate.MaxSurge.String(), "the surge follows the kept new pods")
				}},
		},
		"promote-full": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.PromoteFull = true }),
				template: green, blueRS: 5, greenRS: 1},
			outcome{phase: v1alpha1.RolloutPhaseCompleted, step: 3, state: v1alpha1.StepCompleted, writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					rep := k.rollout().Status.Report
					require.NotNil(t, rep)
					assert.Equal(t, v1alpha1.DecidedByHuman, rep.DecidedBy)
				}},
		},
		"a jump forward": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.NextStepIndex = 3 }),
				template: green, blueRS: 5, greenRS: 1},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 3, state: v1alpha1.StepUpgrade, message: "1/5 new pods ready",
				writes: []string{"update Deployment web"}},
		},
		// The fake client bumps no generation, so the trimmed ReplicaSet counts as ready at
		// once and the step goes on to its analysis in the same pass.
		"a jump back trims the new ReplicaSet": {
			machine{status: with(at(3, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.NextStepIndex = 1 }),
				template: green, blueRS: 5, greenRS: 5},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepMetricsAnalysis,
				writes: []string{"update Deployment web", "patch ReplicaSet web-" + green},
				check: func(t *testing.T, k *fakeCluster) {
					var rs appsv1.ReplicaSet
					require.NoError(t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web-" + green}, &rs))
					assert.Equal(t, int32(1), *rs.Spec.Replicas)
				}},
		},
		"a jump past the last step is refused": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
				st.Phase, st.NextStepIndex = v1alpha1.RolloutPhasePaused, 4
			}), template: green, blueRS: 5, greenRS: 1},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepPaused,
				check: func(t *testing.T, k *fakeCluster) { assert.Zero(t, k.rollout().Status.NextStepIndex) }},
		},
		"retry after an abort": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
				st.Phase, st.NextStepIndex, st.AbortReason = v1alpha1.RolloutPhaseAborted, 1, "errors"
			}), template: green, blueRS: 5, greenRS: 1, deployment: frozen},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepMetricsAnalysis,
				writes: []string{"update Deployment web"},
				check:  func(t *testing.T, k *fakeCluster) { assert.Empty(t, k.rollout().Status.AbortReason) }},
		},
		"an aborted release holds": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.Phase = v1alpha1.RolloutPhaseAborted }),
				template: green, blueRS: 5, greenRS: 1, deployment: frozen},
			outcome{phase: v1alpha1.RolloutPhaseAborted, step: 1, state: v1alpha1.StepPaused},
		},
		"the template reverted to the stable one cancels": {
			machine{status: at(2, v1alpha1.StepPaused), template: blue, blueRS: 5, greenRS: 3},
			outcome{phase: v1alpha1.RolloutPhaseCancelled, step: 2, state: v1alpha1.StepPaused, message: "went back to the stable revision",
				writes: []string{"update Deployment web"}},
		},
		"a newer template restarts the release at step 1": {
			machine{status: at(2, v1alpha1.StepPaused), template: "purple", blueRS: 5, greenRS: 3},
			outcome{phase: v1alpha1.RolloutPhaseProgressing, step: 1, state: v1alpha1.StepUpgrade,
				message: "waiting for the Deployment controller to create the new ReplicaSet", writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					assert.Empty(t, k.rollout().Status.CanaryRevision, "until the new ReplicaSet exists")
					assert.Equal(t, "1", k.deployment().Spec.Strategy.RollingUpdate.MaxSurge.String(), "held at step 1")
				}},
		},
		"held: a new template starts no pod": {
			machine{status: v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPhaseHealthy, StableRevision: blue}, template: green, blueRS: 5, greenRS: -1, deployment: adopted,
				edit: paused},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepUpgrade, message: "held by a human (spec.paused)",
				check: func(t *testing.T, k *fakeCluster) {
					assert.True(t, k.deployment().Spec.Paused, "the Deployment still waits")
				}},
		},
		"held: a Successful run records its verdict and stays": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseSuccessful).withEdit(paused),
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepMetricsAnalysis, message: "held by a human",
				check: func(t *testing.T, k *fakeCluster) {
					st := k.rollout().Status
					assert.Equal(t, "Successful", st.Steps[0].Verdict)
					assert.Equal(t, "web-run", st.AnalysisRuns.Step, "the run is kept for the resume")
				}},
		},
		"held: a run goes on measuring": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseRunning).withEdit(paused),
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepMetricsAnalysis, message: "held by a human",
				check: func(t *testing.T, k *fakeCluster) {
					var run v1alpha1.AnalysisRun
					require.NoError(t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web-run"}, &run))
					assert.False(t, run.Spec.Terminate)
				}},
		},
		"held: a Failed run still aborts": {
			readyUpgrade.withRun(v1alpha1.AnalysisPhaseFailed).withEdit(paused),
			outcome{phase: v1alpha1.RolloutPhaseAborted, step: 1, state: v1alpha1.StepPaused, message: "aborted at step 1",
				writes: []string{"update Deployment web"}},
		},
		"held: a timed pause that ran out does not end": {
			machine{status: at(2, v1alpha1.StepPaused), template: green, blueRS: 5, greenRS: 3, since: 31 * time.Second, edit: paused},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 2, state: v1alpha1.StepPaused, message: "Rollout is in step(2/3), and held by a human"},
		},
		"held: an open release window does not promote": {
			machine{status: at(1, v1alpha1.StepPaused), template: green, blueRS: 5, greenRS: 1,
				edit: func(ro *v1alpha1.Rollout) {
					paused(ro)
					ro.Spec.ReleaseWindow = &v1alpha1.ReleaseWindow{Schedule: "0 * * * *", Duration: metav1.Duration{Duration: 2 * time.Hour}}
				}},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepPaused, message: "held by a human"},
		},
		"held: an approval waits for the resume": {
			machine{status: at(1, v1alpha1.StepReady), template: green, blueRS: 5, greenRS: 1, edit: paused},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepReady, message: "held by a human"},
		},
		"held: an abort still aborts": {
			machine{status: with(at(2, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.Abort = true }),
				template: green, blueRS: 5, greenRS: 3, edit: paused},
			outcome{phase: v1alpha1.RolloutPhaseAborted, step: 1, state: v1alpha1.StepPaused, message: "aborted by a human",
				writes: []string{"update Deployment web"}},
		},
		"resumed: the hold's message goes and the step waits for its human again": {
			machine{status: with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
				st.Phase, st.Message = v1alpha1.RolloutPhasePaused, "held"
				st.Conditions = []metav1.Condition{{Type: ConditionProgressing, Status: metav1.ConditionFalse, Reason: reasonHeld, Message: "held"}}
			}), template: green, blueRS: 5, greenRS: 1},
			outcome{phase: v1alpha1.RolloutPhasePaused, step: 1, state: v1alpha1.StepPaused, message: "you need manually confirm"},
		},
		"disabling mid-release gives the Deployment back": {
			machine{status: at(2, v1alpha1.StepPaused), template: green, blueRS: 5, greenRS: 3,
				edit: func(ro *v1alpha1.Rollout) { ro.Spec.Disabled = true }},
			outcome{phase: v1alpha1.RolloutPhaseDisabled, message: "rolls out on its own", writes: []string{"update Deployment web"},
				check: func(t *testing.T, k *fakeCluster) {
					d := k.deployment()
					assert.Equal(t, userStrategy(), d.Spec.Strategy)
					assert.NotContains(t, d.Annotations, originalAnnotation)
				}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			k := tc.in.cluster(t)
			k.reconcile()
			st := k.rollout().Status
			assert.Equal(t, tc.want.phase, st.Phase, "phase; message %q", st.Message)
			assert.Equal(t, tc.want.step, st.CurrentStepIndex, "step")
			assert.Equal(t, tc.want.state, st.CurrentStepState, "state")
			assert.Contains(t, st.Message, tc.want.message)
			assert.Equal(t, tc.want.writes, k.writes, "writes")
			if tc.want.check != nil {
				tc.want.check(t, k)
			}
		})
	}
}

// withStatus is m at status st.
func (m machine) withStatus(st v1alpha1.RolloutStatus) machine {
	m.status = st
	return m
}

// withEdit is m with edit applied to its Rollout.
func (m machine) withEdit(edit func(*v1alpha1.Rollout)) machine {
	m.edit = edit
	return m
}

// paused holds a release: spec.paused.
func paused(ro *v1alpha1.Rollout) { ro.Spec.Paused = true }

// withRun is m at step 1's analysis, whose run ended in phase.
func (m machine) withRun(phase v1alpha1.AnalysisPhase) machine {
	m.status = with(at(1, v1alpha1.StepMetricsAnalysis), func(st *v1alpha1.RolloutStatus) { st.AnalysisRuns.Step = "web-run" })
	m.run = phase
	return m
}
