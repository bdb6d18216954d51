package rollout

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// adopt takes a Deployment over once its own rollout is done: its template becomes the
// stable revision and it is paused, so the next template waits for the Rollout.
func (s *state) adopt(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	if !s.w.rolledOut() || s.w.current() == "" {
		st.Phase = v1alpha1.RolloutPhaseInitial
		st.Message = fmt.Sprintf("waiting for %s to finish its own rollout", s.w.describe())
		return reconcile.Result{RequeueAfter: waitPoll}, nil
	}
	// Read before adopting: the workload's own status may not have caught up with the
	// write that adopts it.
	stable := s.w.current()
	if err := s.w.adopt(ctx); err != nil {
		return reconcile.Result{}, err
	}
	st.StableRevision = stable
	st.Phase = v1alpha1.RolloutPhaseHealthy
	st.Message = "workload deployment is completed"
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, "Healthy", st.Message)
	s.event(corev1.EventTypeNormal, "Adopted", "%s at revision %s; new pod templates are released by this Rollout", s.w.describe(), st.StableRevision)
	return reconcile.Result{}, nil
}

// start begins a release of the Deployment's template at step 1.
func (s *state) start(why string) {
	st := &s.ro.Status
	st.Phase = v1alpha1.RolloutPhaseProgressing
	st.CanaryRevision = ""
	if cur := s.w.current(); cur != "" && cur != st.StableRevision {
		st.CanaryRevision = cur
	}
	st.ReleaseStartedAt = &metav1.Time{Time: s.now}
	st.AbortReason = ""
	st.AnalysisRuns = v1alpha1.RolloutAnalysisRuns{}
	s.event(corev1.EventTypeNormal, "ReleaseStarted", "release of %s started at step 1: %s", s.ro.Spec.WorkloadRef.Name, why)
	if s.heldAtStart() {
		s.holdForWindow()
		return
	}
	s.enter(1, v1alpha1.StepUpgrade)
}

// disable lets the Deployment go, release or not, and stays out of its way.
func (s *state) disable(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
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

// stopRuns terminates the release's runs. A run that cannot be told is logged: it
// measures on to its end, and nothing reads its verdict any more.
func (s *state) stopRuns(ctx context.Context) {
	st := &s.ro.Status
	for _, name := range []string{st.AnalysisRuns.Step, st.AnalysisRuns.Background} {
		if err := s.terminateRun(ctx, name); err != nil {
			logf.FromContext(ctx).Error(err, "terminating an AnalysisRun the release no longer needs", "analysisRun", name)
		}
	}
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
	if err := s.dropBaseline(ctx); err != nil {
		return err
	}
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

// freeze holds an aborted release where it is: the stable version at full size, the new
// one kept for diagnosis or, with abortScaleDown, scaled away.
func (s *state) freeze(ctx context.Context) error {
	st, _ := s.ro.Spec.Strategy.Active()
	return s.w.freeze(ctx, s.ro.Status.StableRevision, st.AbortScaleDown)
}

// holdAborted keeps an aborted release where it is: traffic on the stable version.
func (s *state) holdAborted(ctx context.Context) (reconcile.Result, error) {
	if err := s.routeAll(ctx, 0, nil); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, s.freeze(ctx)
}

// complete gives the Deployment its strategy back to scale the old version away and
// moves the stable Service to the new version; settle restores the routes once the data
// plane followed, and finishes once the old version is gone.
func (s *state) complete(ctx context.Context, by v1alpha1.Decider) (reconcile.Result, error) {
	st := &s.ro.Status
	s.stopRuns(ctx)
	if err := s.finishAll(ctx, st.CanaryRevision); err != nil && !isNotReady(err) {
		return reconcile.Result{}, err
	}
	if err := s.w.finish(ctx); err != nil {
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
		if err := s.finishAll(ctx, st.StableRevision); err != nil && !isNotReady(err) {
			return reconcile.Result{}, err
		}
	}
	if err := s.dropBaseline(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if err := s.w.finish(ctx); err != nil {
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

// settle ends a completed or cancelled release: the routes go back to the user's once the
// stable Service's EndpointSlices hold the winner alone, and once the Deployment
// controller has scaled the losing version away the selectors are unpinned and the
// Deployment paused again.
func (s *state) settle(ctx context.Context) (reconcile.Result, error) {
	st := &s.ro.Status
	winner := st.CanaryRevision
	if st.Phase == v1alpha1.RolloutPhaseCancelled {
		winner = st.StableRevision
	}
	// Until it is settled the workload runs its own strategy: were it held again (a
	// write raced the completion), no new pod would ever become available.
	if err := s.w.finish(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if err := s.finishAll(ctx, winner); err != nil {
		nr, ok := errors.AsType[*traffic.NotReadyError](err)
		if !ok {
			return reconcile.Result{}, err
		}
		st.Message = "the release is over; before the routes go back, " + nr.Error()
		return reconcile.Result{RequeueAfter: waitPoll}, nil
	}
	if !s.w.rolledOut() || s.w.current() != winner {
		return reconcile.Result{RequeueAfter: waitPoll}, nil
	}
	if err := s.unpinAll(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if err := s.unlabelBatches(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if err := s.w.adopt(ctx); err != nil {
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

// letGo undoes a release and gives the workload back as it was, for disable and delete.
// A Rollout that never managed the workload (say, a second one on it) touches nothing.
func (s *state) letGo(ctx context.Context) error {
	w, err := s.loadWorkload(ctx)
	if w == nil || err != nil {
		return err
	}
	if !w.managed() {
		return nil
	}
	s.w = w
	st := &s.ro.Status
	s.stopRuns(ctx)
	if st.StableRevision != "" && st.CanaryRevision != "" {
		if err := s.finishAll(ctx, st.StableRevision); err != nil {
			return err
		}
	}
	if err := s.dropBaseline(ctx); err != nil {
		return err
	}
	if st.StableRevision != "" {
		if err := s.unpinAll(ctx); err != nil {
			return err
		}
	}
	if err := s.setHPAs(ctx, false); err != nil {
		return err
	}
	if err := s.unlabelBatches(ctx); err != nil {
		return err
	}
	return s.w.restore(ctx)
}

func isNotReady(err error) bool {
	_, ok := errors.AsType[*traffic.NotReadyError](err)
	return ok
}
