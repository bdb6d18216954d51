package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// waitPoll is how soon a step that waits for something no watch reports looks again.
const waitPoll = 2 * time.Second

// statesPerStep bounds one pass of the step loop: a step goes through at most
// StepUpgrade, StepTrafficRouting, StepMetricsAnalysis, StepPaused and StepReady, so a pass
// that could walk every step in one go (nothing to wait for) ends within this many turns
// per step.
const statesPerStep = 5

func (s *state) reconcile(ctx context.Context) (reconcile.Result, error) {
	if err := s.load(ctx); err != nil {
		return reconcile.Result{}, err
	}
	s.setCondition(ConditionValid, metav1.ConditionTrue, "Valid", "the workload, traffic routings and steps are usable")
	st := &s.ro.Status
	st.ObservedWorkloadGeneration = s.w.generation()
	if s.ro.Spec.Disabled {
		return s.disable(ctx)
	}
	if st.StableRevision == "" {
		return s.adopt(ctx)
	}
	if !s.releasing() {
		if st.CanaryRevision != "" {
			return s.settle(ctx)
		}
		if !s.w.observed() {
			// Which revision the template is waits for the workload's controller.
			return reconcile.Result{RequeueAfter: waitPoll}, nil
		}
		if s.w.runs(st.StableRevision) {
			return reconcile.Result{}, s.w.adopt(ctx)
		}
		s.start("a new pod template")
	}
	return s.progress(ctx)
}

// releasing says whether a release is under way (possibly aborted or paused).
func (s *state) releasing() bool {
	switch s.ro.Status.Phase {
	case v1alpha1.RolloutPhaseProgressing, v1alpha1.RolloutPhasePaused, v1alpha1.RolloutPhaseAborted:
		return true
	}
	return false
}

// announced are the step states entering which is an Event. A successful analysis and
// the last step's completion are in status and in the Promoted and ReleaseReport Events.
var announced = map[v1alpha1.StepState]bool{v1alpha1.StepUpgrade: true, v1alpha1.StepPaused: true}

// enter moves to a step and state.
func (s *state) enter(step int32, state v1alpha1.StepState) {
	st := &s.ro.Status
	if state == v1alpha1.StepUpgrade && (st.CurrentStepIndex != step || s.current() == nil) {
		s.beginStep(step)
	}
	if st.CurrentStepIndex != step || st.CurrentStepState != state {
		// A step begins or waits: the states a human follows. The others (traffic routing,
		// analysis, ready) are in status; an Event for each was five per step, a third of
		// the controller's API requests at a thousand releases.
		if st.CurrentStepIndex != 0 && announced[state] {
			s.event(corev1.EventTypeNormal, string(state), "step %d/%d: %s", step, len(s.steps()), state)
		}
		st.StepStartedAt = &metav1.MicroTime{Time: s.now}
	}
	st.CurrentStepIndex, st.CurrentStepState = step, state
}

// steps are the steps of the Rollout's strategy.
func (s *state) steps() []v1alpha1.RolloutStep {
	st, _ := s.ro.Spec.Strategy.Active()
	if st == nil {
		return nil
	}
	return st.Steps
}

// progress walks the current release as far as it can go in this reconcile.
func (s *state) progress(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	steps := s.steps()
	n := int32(len(steps))

	// Until the workload's controller has seen its spec, the release goes on as status
	// records it (an abort included): only a revert or a newer template waits for it.
	switch {
	case !s.w.observed():
	case s.w.runs(st.StableRevision):
		return s.cancel(ctx)
	case st.CanaryRevision != "" && !s.w.runs(st.CanaryRevision):
		// A newer template: the release restarts with it, from stable traffic.
		if err := s.routeAll(ctx, 0, nil); err != nil {
			return reconcile.Result{}, err
		}
		if err := s.dropBaseline(ctx); err != nil {
			return reconcile.Result{}, err
		}
		s.stopRuns(ctx)
		s.start("the pod template changed during the release")
	}
	if st.CanaryRevision == "" {
		if cur := s.w.current(); cur != "" && cur != st.StableRevision {
			st.CanaryRevision = cur
		}
	}

	if st.Phase != v1alpha1.RolloutPhaseAborted && st.AlertAbort == nil {
		res, a := s.pull(ctx)
		s.wakeIn(res.RequeueAfter)
		st.AlertAbort = a
	}
	if a := st.AlertAbort; a != nil {
		st.AlertAbort = nil
		if st.Phase != v1alpha1.RolloutPhaseAborted {
			reason := fmt.Sprintf("alert %s firing %s (%s)", a.AlertName, labelString(a.Labels), a.Source)
			if err := s.abort(ctx, reason, v1alpha1.DecidedByAlert); err != nil {
				return reconcile.Result{}, err
			}
		}
	}
	if err := s.commands(ctx, n); err != nil {
		return reconcile.Result{}, err
	}
	if st.Phase == v1alpha1.RolloutPhaseAborted {
		return s.holdAborted(ctx)
	}
	// A scaling event (kubectl scale, an HPA) moves pods between the revisions in any
	// state, so the split is held in every state that waits; StepUpgrade holds its own
	// step's below, and StepReady leaves its step in this pass.
	if s.w.held() && st.CurrentStepState != v1alpha1.StepUpgrade && st.CurrentStepState != v1alpha1.StepReady &&
		st.CurrentStepIndex >= 1 && st.CurrentStepIndex <= n {
		if _, err := s.w.step(ctx, st.StableRevision, s.replicasAt(st.CurrentStepIndex)); err != nil {
			return reconcile.Result{}, err
		}
	}
	res, done, err := s.gate(ctx)
	if done || err != nil {
		return res, err
	}
	s.wakeIn(res.RequeueAfter)
	if st.CurrentStepIndex < 1 || st.CurrentStepIndex > n {
		s.enter(1, v1alpha1.StepUpgrade)
	}
	if res, done, err := s.background(ctx); done || err != nil {
		return res, err
	}

	if !s.ro.Spec.Paused {
		if c := apimeta.FindStatusCondition(st.Conditions, ConditionProgressing); c != nil && c.Reason == reasonHeld {
			// Out of the hold's phase and message, so that the state the step is in says
			// what it waits for again.
			st.Phase = v1alpha1.RolloutPhaseProgressing
			st.Message = fmt.Sprintf("Rollout is in step(%d/%d), and resumed by a human", st.CurrentStepIndex, n)
			s.setCondition(ConditionProgressing, metav1.ConditionTrue, "Resumed", st.Message)
			s.event(corev1.EventTypeNormal, "Resumed", "step %d/%d: resumed by a human (spec.paused: false)", st.CurrentStepIndex, n)
		}
	}

	for range statesPerStep * n {
		step := steps[st.CurrentStepIndex-1]
		_, path := s.ro.Spec.Strategy.Active()
		path = path.Child("steps").Index(int(st.CurrentStepIndex - 1))
		prefix := fmt.Sprintf("Rollout is in step(%d/%d)", st.CurrentStepIndex, n)
		// A hold stops every move but an analysis's verdict, which is recorded and may
		// abort: abort is safety, and a hold never keeps a failing version's traffic.
		if s.ro.Spec.Paused && (st.CurrentStepState != v1alpha1.StepMetricsAnalysis || step.Analysis == nil) {
			return s.hold(prefix), nil
		}
		switch st.CurrentStepState {
		case v1alpha1.StepUpgrade:
			st.Phase = v1alpha1.RolloutPhaseProgressing
			p, err := s.upgrade(ctx)
			if err != nil {
				return reconcile.Result{}, err
			}
			bp, err := s.stepBaseline(ctx, step, path)
			if err != nil {
				return reconcile.Result{}, err
			}
			st.Message = prefix + ", and upgrade workload to new version: " + p.String()
			if step.Baseline != nil {
				st.Message += ", " + bp.String()
			}
			if !p.done || !bp.done {
				s.setCondition(ConditionProgressing, metav1.ConditionTrue, "StepUpgrade", st.Message)
				return reconcile.Result{RequeueAfter: waitPoll}, nil
			}
			s.enter(st.CurrentStepIndex, v1alpha1.StepTrafficRouting)
		case v1alpha1.StepTrafficRouting:
			weight, err := TrafficAt(steps, st.CurrentStepIndex)
			if err != nil {
				return reconcile.Result{}, err
			}
			if err := s.routeAll(ctx, weight, step.Matches); err != nil {
				nr, ok := errors.AsType[*traffic.NotReadyError](err)
				if !ok {
					return reconcile.Result{}, err
				}
				// The grace period counts from the traffic's move, not from this wait.
				st.StepStartedAt = &metav1.MicroTime{Time: s.now}
				st.Message = fmt.Sprintf("%s, and %s", prefix, nr.Error())
				s.setCondition(ConditionProgressing, metav1.ConditionTrue, "StepTrafficRouting", st.Message)
				return reconcile.Result{RequeueAfter: waitPoll}, nil
			}
			st.Message = fmt.Sprintf("%s, and traffic is %d%% to the new version", prefix, weight)
			if grace := s.grace(); grace > 0 {
				if left := st.StepStartedAt.Add(grace).Sub(s.now); left > 0 {
					return reconcile.Result{RequeueAfter: left}, nil
				}
			}
			s.enter(st.CurrentStepIndex, v1alpha1.StepMetricsAnalysis)
		case v1alpha1.StepMetricsAnalysis:
			if step.Analysis == nil {
				s.afterAnalysis(step)
				continue
			}
			if st.AnalysisRuns.Step == "" {
				// Named in status before it exists, so a restart finds it rather than
				// starting a second one.
				st.AnalysisRuns.Step = runName(s.ro, fmt.Sprintf("step%d", st.CurrentStepIndex), s.now)
				return reconcile.Result{RequeueAfter: soon}, nil
			}
			run, err := s.ensureRun(ctx, st.AnalysisRuns.Step, step.Analysis, path.Child("analysis"), "step")
			if err != nil {
				return reconcile.Result{}, err
			}
			switch run.Status.Phase {
			case v1alpha1.AnalysisPhaseSuccessful:
				s.verdict("Successful", v1alpha1.DecidedByAnalysis, decisive(run))
				if s.ro.Spec.Paused {
					return s.hold(prefix), nil
				}
				s.afterAnalysis(step)
			case v1alpha1.AnalysisPhaseInconclusive:
				s.verdict("Inconclusive", v1alpha1.DecidedByAnalysis, decisive(run))
				s.enter(st.CurrentStepIndex, v1alpha1.StepPaused)
				st.Phase = v1alpha1.RolloutPhasePaused
				st.Message = fmt.Sprintf("%s, and analysis %s is inconclusive: %s; approve, retry or jump", prefix, run.Name, run.Status.Message)
				s.setCondition(ConditionProgressing, metav1.ConditionFalse, "AnalysisInconclusive", st.Message)
				s.event(corev1.EventTypeWarning, "AnalysisInconclusive", "%s", st.Message)
				return reconcile.Result{}, nil
			case v1alpha1.AnalysisPhaseFailed, v1alpha1.AnalysisPhaseError:
				s.verdict(string(run.Status.Phase), v1alpha1.DecidedByAnalysis, decisive(run))
				return reconcile.Result{}, s.abort(ctx, fmt.Sprintf("step %d analysis %s %s: %s", st.CurrentStepIndex, run.Name, run.Status.Phase, run.Status.Message), v1alpha1.DecidedByAnalysis)
			default:
				if s.ro.Spec.Paused {
					return s.hold(prefix), nil
				}
				st.Message = fmt.Sprintf("%s, and analysis %s is measuring", prefix, run.Name)
				s.setCondition(ConditionProgressing, metav1.ConditionTrue, "StepMetricsAnalysis", st.Message)
				return reconcile.Result{}, nil
			}
		case v1alpha1.StepPaused:
			if d := pauseOf(step); d > 0 {
				if left := st.StepStartedAt.Add(d).Sub(s.now); left > 0 {
					st.Phase = v1alpha1.RolloutPhaseProgressing
					st.Message = fmt.Sprintf("%s, and paused for %s", prefix, d)
					return reconcile.Result{RequeueAfter: left}, nil
				}
				s.readyBy = v1alpha1.DecidedByController
				s.enter(st.CurrentStepIndex, v1alpha1.StepReady)
				continue
			}
			if s.autoPromote() {
				s.event(corev1.EventTypeNormal, "AutoPromoted", "step %d: promoted by the open release window", st.CurrentStepIndex)
				s.readyBy = v1alpha1.DecidedByWindow
				s.enter(st.CurrentStepIndex, v1alpha1.StepReady)
				continue
			}
			if st.Phase != v1alpha1.RolloutPhasePaused {
				st.Phase = v1alpha1.RolloutPhasePaused
				st.Message = prefix + ", and you need manually confirm to enter the next step"
				s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Paused", st.Message)
			}
			return reconcile.Result{}, nil
		case v1alpha1.StepReady:
			// The step's baseline ends with it, before anything of the next step starts.
			if err := s.dropBaseline(ctx); err != nil {
				return reconcile.Result{}, err
			}
			st.Phase = v1alpha1.RolloutPhaseProgressing
			st.AnalysisRuns.Step = ""
			by := s.readyBy
			if by == "" {
				// Nothing here moved the step on: a human approved it.
				by = v1alpha1.DecidedByHuman
			}
			s.endStep("Successful", by, nil)
			s.readyBy = ""
			if st.CurrentStepIndex == n {
				return s.complete(ctx, by)
			}
			s.enter(st.CurrentStepIndex+1, v1alpha1.StepUpgrade)
		default:
			s.enter(st.CurrentStepIndex, v1alpha1.StepUpgrade)
		}
	}
	return reconcile.Result{RequeueAfter: soon}, nil
}

// reasonHeld is the Progressing condition's reason while spec.paused holds the release.
const reasonHeld = "Held"

// hold keeps the release at its step and state while spec.paused is set; the spec change
// that clears it brings the next reconcile.
func (s *state) hold(prefix string) reconcile.Result {
	st := &s.ro.Status
	st.Phase = v1alpha1.RolloutPhasePaused
	st.Message = fmt.Sprintf("%s, and held by a human (spec.paused): no step is promoted until it is resumed", prefix)
	if c := apimeta.FindStatusCondition(st.Conditions, ConditionProgressing); c == nil || c.Reason != reasonHeld {
		s.event(corev1.EventTypeNormal, reasonHeld, "%s", st.Message)
	}
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, reasonHeld, st.Message)
	return reconcile.Result{}
}

// upgrade has the workload run the step's new pods beside the old ones and says how far
// they are.
func (s *state) upgrade(ctx context.Context) (stepProgress, error) {
	if err := s.setHPAs(ctx, true); err != nil {
		return stepProgress{}, err
	}
	if s.ro.Status.CanaryRevision == "" {
		// The new pods are about to exist: until a step routes to them, the stable
		// Service must not select them.
		for _, rt := range s.routers() {
			if err := rt.PinStable(ctx); err != nil {
				return stepProgress{}, fmt.Errorf("pinning the stable Service before new pods start: %w", err)
			}
		}
	}
	p, err := s.w.step(ctx, s.ro.Status.StableRevision, s.replicasAt(s.ro.Status.CurrentStepIndex))
	if err != nil {
		return p, err
	}
	return p, s.labelBatches(ctx)
}

// afterAnalysis moves past a step's successful analysis: to its pause, if any.
func (s *state) afterAnalysis(step v1alpha1.RolloutStep) {
	if step.Pause != nil {
		s.enter(s.ro.Status.CurrentStepIndex, v1alpha1.StepPaused)
		return
	}
	if step.Analysis != nil {
		s.readyBy = v1alpha1.DecidedByAnalysis
	} else {
		s.readyBy = v1alpha1.DecidedByController
	}
	s.enter(s.ro.Status.CurrentStepIndex, v1alpha1.StepReady)
}

func pauseOf(step v1alpha1.RolloutStep) time.Duration {
	if step.Pause == nil || step.Pause.Duration == nil {
		return 0
	}
	return step.Pause.Duration.Duration
}

// TrafficAt is the share of traffic step (1-based) gives the new version: its own, or the
// last one set before it, 0% at first.
func TrafficAt(steps []v1alpha1.RolloutStep, step int32) (int32, error) {
	for i := step - 1; i >= 0; i-- {
		if t := steps[i].Traffic; t != nil {
			return v1alpha1.ParsePercent(*t)
		}
	}
	return 0, nil
}

// replicasAt is the step's new-version replicas, or the last set before it: by default
// all of them for blue-green, one for canary.
func (s *state) replicasAt(step int32) *intstr.IntOrString {
	steps := s.steps()
	for i := min(step, int32(len(steps))) - 1; i >= 0; i-- {
		if r := steps[i].Replicas; r != nil {
			return r
		}
	}
	if s.ro.Spec.Strategy.BlueGreen != nil {
		return new(intstr.FromString("100%"))
	}
	return new(intstr.FromInt32(1))
}

// labelString renders labels as Prometheus does, sorted: {a="1", b="2"}.
func labelString(ls map[string]string) string {
	set := make(model.LabelSet, len(ls))
	for k, v := range ls {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	return set.String()
}
