package rollout

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

// commands applies what a human asked for through status: abort, promote-full and jump
// (nextStepIndex; on an aborted release, a retry). Approve needs nothing here: it sets
// currentStepState to StepReady, which the step loop takes from there.
func (s *state) commands(ctx context.Context, n int32) error {
	st := &s.ro.Status
	if st.Abort {
		st.Abort = false
		if st.Phase != v1alpha1.RolloutPhaseAborted {
			if err := s.abort(ctx, "aborted by a human (status.abort)", v1alpha1.DecidedByHuman); err != nil {
				return err
			}
		}
	}
	if st.PromoteFull {
		st.PromoteFull, st.NextStepIndex = false, 0
		s.stopRuns(ctx)
		if st.Phase == v1alpha1.RolloutPhaseAborted {
			s.beginStep(n)
		}
		s.endStep("Skipped", v1alpha1.DecidedByHuman, nil)
		st.Phase, st.AbortReason = v1alpha1.RolloutPhaseProgressing, ""
		s.readyBy = v1alpha1.DecidedByHuman
		s.enter(n, v1alpha1.StepReady)
		s.event(corev1.EventTypeNormal, "PromoteFull", "promoted to the end by a human (status.promoteFull): remaining steps, analyses and pauses skipped")
		return nil
	}
	j := st.NextStepIndex
	if j == 0 {
		return nil
	}
	st.NextStepIndex = 0
	if j > n {
		s.event(corev1.EventTypeWarning, "InvalidJump", "status.nextStepIndex %d is not a step: there are %d", j, n)
		return nil
	}
	steps := s.steps()
	target, err := TrafficAt(steps, j)
	if err != nil {
		return err
	}
	// Traffic goes down before pods do, at once; it goes up only once the target step's
	// pods are ready, in its StepTrafficRouting.
	if now := s.appliedTraffic(steps); target < now {
		if err := s.routeAll(ctx, target, nil); err != nil {
			return err
		}
	}
	s.stopRuns(ctx)
	retry := st.Phase == v1alpha1.RolloutPhaseAborted
	s.endStep("Skipped", v1alpha1.DecidedByHuman, nil)
	s.beginStep(j)
	st.Phase = v1alpha1.RolloutPhaseProgressing
	st.CurrentStepIndex, st.CurrentStepState = j, v1alpha1.StepUpgrade
	st.StepStartedAt = &metav1.MicroTime{Time: s.now}
	if retry {
		st.ReleaseStartedAt, st.AbortReason = &metav1.Time{Time: s.now}, ""
		s.event(corev1.EventTypeNormal, "Retry", "release retried from step %d by a human (status.nextStepIndex)", j)
	} else {
		s.event(corev1.EventTypeNormal, "Jump", "jumped to step %d by a human (status.nextStepIndex)", j)
	}
	s.setCondition(ConditionProgressing, metav1.ConditionTrue, "Jump", fmt.Sprintf("at step %d of %d", j, n))
	return nil
}

// appliedTraffic is the share of traffic the new version has now.
func (s *state) appliedTraffic(steps []v1alpha1.RolloutStep) int32 {
	st := &s.ro.Status
	if st.Phase == v1alpha1.RolloutPhaseAborted || st.CurrentStepIndex < 1 {
		return 0
	}
	step := st.CurrentStepIndex
	if st.CurrentStepState == v1alpha1.StepUpgrade {
		step--
	}
	if step < 1 {
		return 0
	}
	w, err := TrafficAt(steps, step)
	if err != nil {
		return 0
	}
	return w
}
