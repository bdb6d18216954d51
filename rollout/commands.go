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
			if err := s.abort(ctx, "aborted by a human (status.abort)"); err != nil {
				return err
			}
		}
	}
	if st.PromoteFull {
		st.PromoteFull, st.NextStepIndex = false, 0
		s.stopRuns(ctx)
		st.Phase, st.AbortReason = v1alpha1.RolloutPhaseProgressing, ""
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
	steps := strategyOf(s.ro).Steps
	weight, err := trafficAt(steps, j)
	if err != nil {
		return err
	}
	// Traffic goes down before pods do: the target step's share at once.
	if err := s.routeAll(ctx, weight, steps[j-1].Matches); err != nil {
		return err
	}
	s.stopRuns(ctx)
	retry := st.Phase == v1alpha1.RolloutPhaseAborted
	st.Phase = v1alpha1.RolloutPhaseProgressing
	st.CurrentStepIndex, st.CurrentStepState = j, v1alpha1.StepUpgrade
	st.StepStartedAt = &metav1.Time{Time: s.now}
	if retry {
		st.ReleaseStartedAt, st.AbortReason = &metav1.Time{Time: s.now}, ""
		s.event(corev1.EventTypeNormal, "Retry", "release retried from step %d by a human (status.nextStepIndex)", j)
	} else {
		s.event(corev1.EventTypeNormal, "Jump", "jumped to step %d by a human (status.nextStepIndex)", j)
	}
	s.setCondition(ConditionProgressing, metav1.ConditionTrue, "Jump", fmt.Sprintf("at step %d of %d", j, n))
	return nil
}
