package rollout

import (
	"context"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/alerts"
)

// pullInterval is how often a release in pull mode asks Alertmanager for firing alerts.
const pullInterval = 5 * time.Second

// pullClient asks Alertmanager; its timeout keeps a slow Alertmanager from holding a
// reconcile worker.
var pullClient = &http.Client{Timeout: 2 * time.Second}

// loadGates parses the release window and the alert matchers.
func (s *state) loadGates() error {
	if w := s.ro.Spec.ReleaseWindow; w != nil {
		win, err := ParseWindow(w)
		if err != nil {
			return err
		}
		s.window = win
	}
	if a := s.ro.Spec.AbortOn; a != nil {
		ms, err := alerts.ParseMatchers(a.Alerts, field.NewPath("spec", "abortOn", "alerts"))
		if err != nil {
			return err
		}
		s.matchers = ms
	}
	return nil
}

// heldAtStart says whether the release window keeps a new release from starting; it is called
// when a release starts.
func (s *state) heldAtStart() bool {
	if s.window == nil {
		return false
	}
	ws := s.window.At(s.now)
	s.ro.Status.Window = ws.Status()
	return !ws.Open
}

// gate applies the release window to a release in progress: it holds or aborts when the
// window is closed and lets a held release go when it opens. done says the release must
// not move in this pass.
func (s *state) gate(ctx context.Context) (res reconcile.Result, done bool, err error) {
	st := &s.ro.Status
	if s.window == nil {
		st.Held, st.Window = false, nil
		return res, false, nil
	}
	ws := s.window.At(s.now)
	st.Window = ws.Status()
	zone := s.window.Location().String()
	if ws.Open {
		if st.Held {
			st.Held = false
			s.event(corev1.EventTypeNormal, "WindowOpened", "the release window is open until %s (%s): the release goes on", ws.ClosesAt.Format(time.RFC3339), zone)
			if len(st.Steps) == 0 {
				// Held before step 1 started: start it now.
				s.enter(1, v1alpha1.StepUpgrade)
			}
		}
		// Come back when it closes, for the close policy.
		if !ws.ClosesAt.IsZero() {
			res.RequeueAfter = ws.ClosesAt.Sub(s.now)
		}
		return res, false, nil
	}
	if !ws.NextOpen.IsZero() {
		res.RequeueAfter = ws.NextOpen.Sub(s.now)
	}
	next := "never"
	if !ws.NextOpen.IsZero() {
		next = ws.NextOpen.Format(time.RFC3339) + " (" + zone + ")"
	}
	if st.Held {
		st.Phase = v1alpha1.RolloutPhasePaused
		return res, true, nil
	}
	if s.window.OnClose() == v1alpha1.WindowAbort {
		return res, true, s.abort(ctx, "the release window closed (onClose: Abort)", v1alpha1.DecidedByWindow)
	}
	st.Held = true
	st.Phase = v1alpha1.RolloutPhasePaused
	st.Message = fmt.Sprintf("Rollout is in step(%d/%d), and the release window closed: holding until it opens at %s", st.CurrentStepIndex, len(s.steps()), next)
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, "WindowClosed", st.Message)
	s.event(corev1.EventTypeNormal, "WindowClosed", "%s", st.Message)
	return res, true, nil
}

// holdForWindow parks a new release at step 1 until the window opens.
func (s *state) holdForWindow() {
	st := &s.ro.Status
	st.Held = true
	st.Phase = v1alpha1.RolloutPhasePaused
	st.CurrentStepIndex, st.CurrentStepState = 1, v1alpha1.StepPaused
	st.StepStartedAt = &metav1.MicroTime{Time: s.now}
	next := "never"
	if st.Window != nil && st.Window.NextOpen != "" {
		next = st.Window.NextOpen + " (" + s.window.Location().String() + ")"
	}
	st.Message = fmt.Sprintf("the new revision waits for the release window: next opening at %s", next)
	s.setCondition(ConditionProgressing, metav1.ConditionFalse, "WaitingForWindow", st.Message)
	s.event(corev1.EventTypeNormal, "WaitingForWindow", "%s", st.Message)
}

// autoPromote says whether a pause without a duration ends by itself: inside an open
// window, when the step's analysis (if any) did not come back inconclusive.
func (s *state) autoPromote() bool {
	if s.window == nil || s.ro.Status.Held || !s.window.At(s.now).Open {
		return false
	}
	r := s.current()
	return r == nil || (r.Verdict == "" || r.Verdict == "Successful")
}

// pull checks Alertmanager for firing alerts matching spec.abortOn, for releases that do
// not rely on the webhook alone. An unreachable Alertmanager is logged, not fatal: the
// webhook may still come.
func (s *state) pull(ctx context.Context) (reconcile.Result, *v1alpha1.AlertAbort) {
	a := s.ro.Spec.AbortOn
	if a == nil || a.Alertmanager == nil || len(s.matchers) == 0 {
		return reconcile.Result{}, nil
	}
	firing, err := alerts.Firing(ctx, pullClient, a.Alertmanager.Address)
	if err != nil {
		logf.FromContext(ctx).Error(err, "checking Alertmanager for firing alerts", "address", a.Alertmanager.Address)
		return reconcile.Result{RequeueAfter: pullInterval}, nil
	}
	for _, al := range firing {
		if s.matchers.Match(al.Labels) {
			return reconcile.Result{}, alerts.NewAlertAbort(al, alerts.SourcePull, s.now)
		}
	}
	return reconcile.Result{RequeueAfter: pullInterval}, nil
}

// background runs the Rollout's background analysis from its starting step; done says
// the release must not move on in this pass.
func (s *state) background(ctx context.Context) (res reconcile.Result, done bool, err error) {
	bg := s.ro.Spec.Analysis
	st := &s.ro.Status
	if bg == nil || st.CanaryRevision == "" || st.CurrentStepIndex < ptr.Deref(bg.StartingStep, 1) {
		return res, false, nil
	}
	if st.AnalysisRuns.Background == "" {
		st.AnalysisRuns.Background = runName(s.ro, "background", s.now)
		return reconcile.Result{RequeueAfter: soon}, true, nil
	}
	run, err := s.ensureRun(ctx, st.AnalysisRuns.Background, &bg.RolloutAnalysis, field.NewPath("spec", "analysis"), "background")
	if err != nil {
		return res, true, err
	}
	switch run.Status.Phase {
	case v1alpha1.AnalysisPhaseFailed, v1alpha1.AnalysisPhaseError:
		s.verdict(string(run.Status.Phase), v1alpha1.DecidedByAnalysis, decisive(run))
		return res, true, s.abort(ctx, fmt.Sprintf("background analysis %s %s: %s", run.Name, run.Status.Phase, run.Status.Message), v1alpha1.DecidedByAnalysis)
	case v1alpha1.AnalysisPhaseInconclusive:
		if st.CurrentStepState == v1alpha1.StepReady {
			// A human approved past it: measure afresh from here.
			st.AnalysisRuns.Background = ""
			return res, false, nil
		}
		if st.CurrentStepState != v1alpha1.StepPaused {
			s.enter(st.CurrentStepIndex, v1alpha1.StepPaused)
		}
		st.Phase = v1alpha1.RolloutPhasePaused
		st.Message = fmt.Sprintf("background analysis %s is inconclusive: %s; approve, retry or jump", run.Name, run.Status.Message)
		s.setCondition(ConditionProgressing, metav1.ConditionFalse, "AnalysisInconclusive", st.Message)
		return res, true, nil
	}
	return res, false, nil
}
