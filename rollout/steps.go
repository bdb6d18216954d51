package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// waitPoll is how soon a step that waits for something no watch reports looks again.
const waitPoll = 2 * time.Second

func (s *state) reconcile(ctx context.Context) (reconcile.Result, error) {
	if err := s.load(ctx); err != nil {
		return reconcile.Result{}, err
	}
	s.setCondition(ConditionValid, metav1.ConditionTrue, "Valid", "the workload, traffic routings and steps are usable")
	st := &s.ro.Status
	st.ObservedWorkloadGeneration = s.d.Generation
	if s.ro.Spec.Disabled {
		if st.Phase == v1alpha1.RolloutPhaseDisabled {
			return reconcile.Result{}, nil
		}
		if err := s.letGo(ctx); err != nil {
			return reconcile.Result{}, err
		}
		*st = v1alpha1.RolloutStatus{Conditions: st.Conditions, Phase: v1alpha1.RolloutPhaseDisabled,
			Message: "disabled: the Deployment rolls out on its own"}
		s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Disabled", st.Message)
		s.event(corev1.EventTypeNormal, "Disabled", "%s", st.Message)
		return reconcile.Result{}, nil
	}
	if st.StableRevision == "" {
		return s.adopt(ctx)
	}
	if !s.releasing() {
		if st.CanaryRevision != "" {
			return s.settle(ctx)
		}
		if s.matches(st.StableRevision) {
			_, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) { return adopt(d, s.ro.Name) })
			return reconcile.Result{}, err
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

// matches says whether the Deployment's pod template is the revision hash's.
func (s *state) matches(hash string) bool {
	rs := s.revs.byHash[hash]
	return rs != nil && equalIgnoreHash(&rs.Spec.Template, &s.d.Spec.Template)
}

// adopt takes a Deployment over once its own rollout is done: its template becomes the
// stable revision and it is paused, so the next template waits for the Rollout.
func (s *state) adopt(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	if !rolledOut(s.d) || s.revs.current == nil {
		st.Phase = v1alpha1.RolloutPhaseInitial
		st.Message = fmt.Sprintf("waiting for Deployment %s to finish its own rollout", s.d.Name)
		return reconcile.Result{RequeueAfter: waitPoll}, nil
	}
	if _, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) { return adopt(d, s.ro.Name) }); err != nil {
		return reconcile.Result{}, err
	}
	st.StableRevision = hashOf(s.revs.current)
	st.Phase = v1alpha1.RolloutPhaseHealthy
	st.Message = "workload deployment is completed"
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Healthy", st.Message)
	s.event(corev1.EventTypeNormal, "Adopted", "Deployment %s at revision %s; new pod templates are released by this Rollout", s.d.Name, st.StableRevision)
	return reconcile.Result{}, nil
}

// start begins a release of the Deployment's template at step 1.
func (s *state) start(why string) {
	st := &s.ro.Status
	st.Phase = v1alpha1.RolloutPhaseProgressing
	st.CanaryRevision = ""
	if s.revs.current != nil && hashOf(s.revs.current) != st.StableRevision {
		st.CanaryRevision = hashOf(s.revs.current)
	}
	st.ReleaseStartedAt = &metav1.Time{Time: s.now}
	st.AbortReason = ""
	st.AnalysisRuns = v1alpha1.RolloutAnalysisRuns{}
	s.event(corev1.EventTypeNormal, "ReleaseStarted", "release of %s started at step 1: %s", s.d.Name, why)
	if s.heldAtStart() {
		s.holdForWindow()
		return
	}
	s.enter(1, v1alpha1.StepUpgrade)
}

// enter moves to a step and state.
func (s *state) enter(step int32, state v1alpha1.StepState) {
	st := &s.ro.Status
	if state == v1alpha1.StepUpgrade && (st.CurrentStepIndex != step || s.current() == nil) {
		s.beginStep(step)
	}
	if st.CurrentStepIndex != step || st.CurrentStepState != state {
		if st.CurrentStepIndex != 0 {
			s.event(corev1.EventTypeNormal, string(state), "step %d/%d: %s", step, len(strategyOf(s.ro).Steps), state)
		}
		st.StepStartedAt = &metav1.Time{Time: s.now}
	}
	st.CurrentStepIndex, st.CurrentStepState = step, state
}

// progress walks the current release as far as it can go in this reconcile.
func (s *state) progress(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	steps := strategyOf(s.ro).Steps
	n := int32(len(steps))

	switch {
	case s.matches(st.StableRevision):
		return s.cancel(ctx)
	case st.CanaryRevision != "" && !s.matches(st.CanaryRevision):
		// A newer template: the release restarts with it, from stable traffic.
		if err := s.routeAll(ctx, 0, nil); err != nil {
			return reconcile.Result{}, err
		}
		s.stopRuns(ctx)
		s.start("the pod template changed during the release")
	}
	if st.CanaryRevision == "" {
		if s.revs.current != nil && hashOf(s.revs.current) != st.StableRevision {
			st.CanaryRevision = hashOf(s.revs.current)
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

	for range 4 * n {
		step := steps[st.CurrentStepIndex-1]
		field := fmt.Sprintf("%s.steps[%d]", strategyField(s.ro), st.CurrentStepIndex-1)
		prefix := fmt.Sprintf("Rollout is in step(%d/%d)", st.CurrentStepIndex, n)
		switch st.CurrentStepState {
		case v1alpha1.StepUpgrade:
			st.Phase = v1alpha1.RolloutPhaseProgressing
			ready, msg, err := s.upgrade(ctx, steps)
			if err != nil {
				return reconcile.Result{}, err
			}
			st.Message = prefix + ", and upgrade workload to new version: " + msg
			if !ready {
				s.setCondition(ConditionProgressing, metav1.ConditionTrue, "StepUpgrade", st.Message)
				return reconcile.Result{RequeueAfter: waitPoll}, nil
			}
			s.enter(st.CurrentStepIndex, v1alpha1.StepTrafficRouting)
		case v1alpha1.StepTrafficRouting:
			weight, err := trafficAt(steps, st.CurrentStepIndex)
			if err != nil {
				return reconcile.Result{}, err
			}
			if err := s.routeAll(ctx, weight, step.Matches); err != nil {
				return reconcile.Result{}, err
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
				return reconcile.Result{Requeue: true}, nil
			}
			run, err := s.r.ensureRun(ctx, s.ro, st.AnalysisRuns.Step, step.Analysis, field+".analysis", "step")
			if err != nil {
				return reconcile.Result{}, err
			}
			switch run.Status.Phase {
			case v1alpha1.AnalysisPhaseSuccessful:
				s.event(corev1.EventTypeNormal, "AnalysisSuccessful", "step %d: AnalysisRun %s: %s", st.CurrentStepIndex, run.Name, run.Status.Message)
				s.verdict("Successful", v1alpha1.DecidedByAnalysis, decisive(run))
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
	return reconcile.Result{Requeue: true}, nil
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

// trafficAt is the step's traffic, or the last one set before it (0% at first).
func trafficAt(steps []v1alpha1.RolloutStep, step int32) (int32, error) {
	for i := step - 1; i >= 0; i-- {
		if t := steps[i].Traffic; t != nil {
			return parsePercent(*t)
		}
	}
	return 0, nil
}

// replicasAt is the step's new-version replicas, or the last set before it: by default
// all of them for blue-green, one for canary.
func (s *state) replicasAt(steps []v1alpha1.RolloutStep, step int32) *intstr.IntOrString {
	for i := step - 1; i >= 0; i-- {
		if r := steps[i].Replicas; r != nil {
			return r
		}
	}
	if s.ro.Spec.Strategy.BlueGreen != nil {
		return new(intstr.FromString("100%"))
	}
	return new(intstr.FromInt32(1))
}

func (s *state) grace() time.Duration {
	var g int32
	for _, tr := range routingsOf(s.ro) {
		g = max(g, tr.GracePeriodSeconds)
	}
	return time.Duration(g) * time.Second
}

// upgrade has the Deployment controller run the step's new pods beside the old ones and
// says whether they are ready.
func (s *state) upgrade(ctx context.Context, steps []v1alpha1.RolloutStep) (bool, string, error) {
	total := ptrOr(s.d.Spec.Replicas, 1)
	want, err := desiredReplicas(s.replicasAt(steps, s.ro.Status.CurrentStepIndex), total)
	if err != nil {
		return false, "", err
	}
	if err := s.setHPAs(ctx, true); err != nil {
		return false, "", err
	}
	if s.ro.Status.CanaryRevision == "" {
		// The new pods are about to exist: until a step routes to them, the stable
		// Service must not select them.
		for _, rt := range s.routersNow() {
			if err := rt.PinStable(ctx); err != nil {
				return false, "", fmt.Errorf("pinning the stable Service before new pods start: %w", err)
			}
		}
	}
	if _, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) {
		return hold(d, want), nil
	}); err != nil {
		return false, "", err
	}
	rs := s.revs.byHash[s.ro.Status.CanaryRevision]
	if s.ro.Status.CanaryRevision == "" || rs == nil {
		return false, "waiting for the Deployment controller to create the new ReplicaSet", nil
	}
	if target := max(want, 1); ptrOr(rs.Spec.Replicas, 0) > target {
		// Going back to a smaller step: the Deployment controller only ever scales the
		// new ReplicaSet up, and holds whatever size it is given at this surge.
		patch := client.MergeFrom(rs.DeepCopy())
		rs.Spec.Replicas = new(target)
		if err := s.r.Client.Patch(ctx, rs, patch); err != nil {
			return false, "", fmt.Errorf("scaling ReplicaSet %s down to %d: %w", rs.Name, target, err)
		}
	}
	ready := rs.Status.ReadyReplicas
	msg := fmt.Sprintf("%d/%d new pods ready", ready, want)
	return ptrOr(rs.Spec.Replicas, 0) == max(want, 1) && rs.Status.ObservedGeneration >= rs.Generation && ready >= want, msg, nil
}

// routersNow builds the traffic routers for the revisions in status.
func (s *state) routersNow() []traffic.Router {
	field := strategyField(s.ro)
	var out []traffic.Router
	for i, tr := range routingsOf(s.ro) {
		out = append(out, traffic.New(s.r.Client, traffic.Target{
			Rollout: s.ro, Routing: tr, Field: fmt.Sprintf("%s.trafficRoutings[%d]", field, i),
			StableRevision: s.ro.Status.StableRevision, CanaryRevision: s.ro.Status.CanaryRevision,
		}))
	}
	return out
}

func (s *state) routeAll(ctx context.Context, weight int32, matches []v1alpha1.HTTPRouteMatch) error {
	if s.ro.Status.CanaryRevision == "" {
		return nil
	}
	for _, rt := range s.routersNow() {
		if err := rt.Route(ctx, weight, matches); err != nil {
			return fmt.Errorf("routing %d%% to the new version: %w", weight, err)
		}
	}
	return nil
}

func (s *state) finishAll(ctx context.Context, winner string) error {
	for _, rt := range s.routersNow() {
		if err := rt.Finish(ctx, winner); err != nil {
			return fmt.Errorf("sending all traffic to revision %s: %w", winner, err)
		}
	}
	return nil
}

func (s *state) unpinAll(ctx context.Context) error {
	for _, rt := range s.routersNow() {
		if err := rt.Unpin(ctx); err != nil {
			return fmt.Errorf("restoring Service selectors: %w", err)
		}
	}
	return nil
}

// stopRuns terminates the release's runs; failing to is logged by the caller's next pass.
func (s *state) stopRuns(ctx context.Context) {
	st := &s.ro.Status
	_ = s.r.terminateRun(ctx, s.ro.Namespace, st.AnalysisRuns.Step)
	_ = s.r.terminateRun(ctx, s.ro.Namespace, st.AnalysisRuns.Background)
	st.AnalysisRuns = v1alpha1.RolloutAnalysisRuns{}
}

// abort sends all traffic back to the stable version and stops at step 1.
func (s *state) abort(ctx context.Context, reason string, by v1alpha1.Decider) error {
	st := &s.ro.Status
	if st.CanaryRevision != "" {
		if err := s.routeAll(ctx, 0, nil); err != nil {
			return err
		}
	}
	at := st.CurrentStepIndex
	s.stopRuns(ctx)
	if err := s.freeze(ctx); err != nil {
		return err
	}
	s.report(v1alpha1.RolloutPhaseAborted, by, reason)
	st.Phase = v1alpha1.RolloutPhaseAborted
	st.AbortReason = reason
	s.enter(1, v1alpha1.StepPaused)
	st.Message = fmt.Sprintf("aborted at step %d: %s; all traffic is on the stable version", at, reason)
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Aborted", st.Message)
	s.event(corev1.EventTypeWarning, "Aborted", "%s", st.Message)
	return nil
}

// freeze pauses the Deployment where it is and, if asked, scales the new version away;
// paused, the Deployment controller leaves both ReplicaSets alone.
func (s *state) freeze(ctx context.Context) error {
	if _, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) {
		changed := !d.Spec.Paused
		d.Spec.Paused = true
		return changed, nil
	}); err != nil {
		return err
	}
	if !strategyOf(s.ro).AbortScaleDown {
		return nil
	}
	rs := s.revs.byHash[s.ro.Status.CanaryRevision]
	if rs == nil || ptrOr(rs.Spec.Replicas, 0) == 0 {
		return nil
	}
	patch := client.MergeFrom(rs.DeepCopy())
	rs.Spec.Replicas = new(int32(0))
	if err := s.r.Client.Patch(ctx, rs, patch); err != nil {
		return fmt.Errorf("scaling ReplicaSet %s down: %w", rs.Name, err)
	}
	return nil
}

// holdAborted keeps an aborted release where it is: traffic on the stable version.
func (s *state) holdAborted(ctx context.Context) (reconcile.Result, error) {
	if err := s.routeAll(ctx, 0, nil); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, s.freeze(ctx)
}

// complete hands all traffic to the new version and gives the Deployment its strategy
// back to scale the old version away; settle finishes once it has.
func (s *state) complete(ctx context.Context, by v1alpha1.Decider) (reconcile.Result, error) {
	st := &s.ro.Status
	s.stopRuns(ctx)
	if err := s.finishAll(ctx, st.CanaryRevision); err != nil {
		return reconcile.Result{}, err
	}
	if _, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) { return release(d, true) }); err != nil {
		return reconcile.Result{}, err
	}
	s.report(v1alpha1.RolloutPhaseCompleted, by, "every step passed")
	st.Phase = v1alpha1.RolloutPhaseCompleted
	s.enter(st.CurrentStepIndex, v1alpha1.StepCompleted)
	st.Message = "all traffic is on the new version; the Deployment controller is scaling the old version away"
	s.event(corev1.EventTypeNormal, "Promoted", "%s", st.Message)
	return reconcile.Result{RequeueAfter: waitPoll}, nil
}

// cancel restores everything when the Deployment's template went back to the stable one.
func (s *state) cancel(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	s.stopRuns(ctx)
	if st.CanaryRevision != "" {
		if err := s.finishAll(ctx, st.StableRevision); err != nil {
			return reconcile.Result{}, err
		}
	}
	if _, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) { return release(d, true) }); err != nil {
		return reconcile.Result{}, err
	}
	if st.Phase != v1alpha1.RolloutPhaseCancelled {
		s.report(v1alpha1.RolloutPhaseCancelled, v1alpha1.DecidedByHuman, "the Deployment went back to the stable revision")
	}
	st.Phase = v1alpha1.RolloutPhaseCancelled
	st.Message = "the Deployment went back to the stable revision; the new version is being scaled away"
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Cancelled", st.Message)
	s.event(corev1.EventTypeNormal, "Cancelled", "%s", st.Message)
	if st.CanaryRevision == "" {
		st.CanaryRevision = st.StableRevision
	}
	return reconcile.Result{RequeueAfter: waitPoll}, nil
}

// settle ends a completed or cancelled release once the Deployment controller has
// scaled the losing version away: selectors are unpinned and the Deployment paused again.
func (s *state) settle(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	winner := st.CanaryRevision
	if st.Phase == v1alpha1.RolloutPhaseCancelled {
		winner = st.StableRevision
	}
	if !rolledOut(s.d) || s.revs.current == nil || hashOf(s.revs.current) != winner {
		return reconcile.Result{RequeueAfter: waitPoll}, nil
	}
	if err := s.unpinAll(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if _, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(s.d), func(d *appsv1.Deployment) (bool, error) { return adopt(d, s.ro.Name) }); err != nil {
		return reconcile.Result{}, err
	}
	if err := s.setHPAs(ctx, false); err != nil {
		return reconcile.Result{}, err
	}
	st.StableRevision, st.CanaryRevision = winner, ""
	if st.Phase == v1alpha1.RolloutPhaseCompleted {
		st.Message = "Rollout progressing has been completed"
		s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Completed", st.Message)
	} else {
		st.Message = "Rollout progressing has been cancelled"
	}
	s.event(corev1.EventTypeNormal, "Settled", "%s: revision %s serves all traffic", st.Message, winner)
	return reconcile.Result{}, nil
}

// letGo undoes a release and gives the Deployment back as it was, for disable and delete.
// A Rollout that never managed the Deployment (say, a second one on it) touches nothing.
func (s *state) letGo(ctx context.Context) error {
	var d appsv1.Deployment
	if err := s.r.Client.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: s.ro.Spec.WorkloadRef.Name}, &d); err != nil {
		return client.IgnoreNotFound(err)
	}
	if d.Annotations[managedByAnnotation] != s.ro.Name {
		return nil
	}
	st := &s.ro.Status
	s.stopRuns(ctx)
	if st.StableRevision != "" && st.CanaryRevision != "" {
		if err := s.finishAll(ctx, st.StableRevision); err != nil {
			return err
		}
	}
	if st.StableRevision != "" {
		if err := s.unpinAll(ctx); err != nil {
			return err
		}
	}
	if err := s.setHPAs(ctx, false); err != nil {
		return err
	}
	_, err := updateDeployment(ctx, s.r.Client, client.ObjectKeyFromObject(&d), func(d *appsv1.Deployment) (bool, error) { return release(d, false) })
	return err
}

// labelString renders labels as Prometheus does, sorted: {a="1", b="2"}.
func labelString(ls map[string]string) string {
	set := make(model.LabelSet, len(ls))
	for k, v := range ls {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	return set.String()
}
