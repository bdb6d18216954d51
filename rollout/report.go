package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
)

const (
	maxStepRecords   = 20
	maxMeasurements  = 5
	maxNotifyAttempt = 5
	notifyTimeout    = 5 * time.Second
	notifyBackoff    = 5 * time.Second
)

// beginStep opens the record of a step the release enters.
func (s *state) beginStep(index int32) {
	st := &s.ro.Status
	if n := len(st.Steps); n > 0 && st.Steps[n-1].EndedAt == nil {
		s.endStep("Skipped", v1alpha1.DecidedByHuman, nil)
	}
	st.Steps = append(st.Steps, v1alpha1.StepRecord{Index: index, StartedAt: metav1.Time{Time: s.now}})
	if len(st.Steps) > maxStepRecords {
		st.Steps = st.Steps[len(st.Steps)-maxStepRecords:]
	}
}

// current is the record of the step in progress, if any.
func (s *state) current() *v1alpha1.StepRecord {
	st := &s.ro.Status
	if n := len(st.Steps); n > 0 && st.Steps[n-1].EndedAt == nil {
		return &st.Steps[n-1]
	}
	return nil
}

// verdict notes how the step's analysis ended without ending the step (it may pause).
func (s *state) verdict(v string, by v1alpha1.Decider, ms []string) {
	if r := s.current(); r != nil {
		r.Verdict, r.DecidedBy, r.Measurements = v, by, ms
	}
}

// endStep closes the step in progress.
func (s *state) endStep(v string, by v1alpha1.Decider, ms []string) {
	r := s.current()
	if r == nil {
		return
	}
	r.EndedAt = &metav1.Time{Time: s.now}
	// A step keeps its analysis verdict, except that one cut short is no longer
	// Successful.
	if r.Verdict == "" || (v != "Successful" && r.Verdict == "Successful") {
		r.Verdict = v
	}
	r.DecidedBy = by
	if ms != nil {
		r.Measurements = ms
	}
}

// decisive picks the measurements a verdict rests on: each metric's last one.
func decisive(run *v1alpha1.AnalysisRun) []string {
	var out []string
	for _, mr := range run.Status.MetricResults {
		if len(out) == maxMeasurements {
			break
		}
		value := "-"
		if n := len(mr.Measurements); n > 0 && mr.Measurements[n-1].Value != "" {
			value = mr.Measurements[n-1].Value
		}
		out = append(out, fmt.Sprintf("%s=%s (%s)", mr.Name, value, mr.Phase))
	}
	return out
}

// report ends the release's record: status keeps the summary and an event says it.
func (s *state) report(outcome v1alpha1.RolloutPhase, by v1alpha1.Decider, why string) {
	st := &s.ro.Status
	verdict := map[v1alpha1.RolloutPhase]string{v1alpha1.RolloutPhaseCompleted: "Successful", v1alpha1.RolloutPhaseCancelled: "Cancelled"}[outcome]
	if verdict == "" {
		verdict = "Aborted"
	}
	s.endStep(verdict, by, nil)
	started := s.now
	if st.ReleaseStartedAt != nil {
		started = st.ReleaseStartedAt.Time
	}
	var steps []string
	for _, r := range st.Steps {
		steps = append(steps, fmt.Sprintf("%d:%s", r.Index, r.Verdict))
	}
	summary := fmt.Sprintf("release of %s revision %s %s after %s, decided by %s: %s; steps %s",
		s.ro.Spec.WorkloadRef.Name, st.CanaryRevision, strings.ToLower(string(outcome)), s.now.Sub(started).Round(time.Second), by, why, strings.Join(steps, " "))
	st.Report = &v1alpha1.ReleaseReport{
		Revision: st.CanaryRevision, Outcome: outcome, DecidedBy: by, Summary: summary,
		StartedAt: metav1.Time{Time: started}, EndedAt: metav1.Time{Time: s.now},
		Steps: st.Steps,
	}
	st.Steps = nil
	s.reported = true
	kind := corev1.EventTypeNormal
	if outcome != v1alpha1.RolloutPhaseCompleted {
		kind = corev1.EventTypeWarning
	}
	s.event(kind, "ReleaseReport", "%s", summary)
}

// notify posts the last report to spec.notify once it is saved in status, and records
// the outcome with its own optimistic-lock patch. Delivery is at least once: a POST whose
// record loses a conflict is sent again.
func (s *state) notify(ctx context.Context) (reconcile.Result, error) {
	rep := s.ro.Status.Report
	n := s.ro.Spec.Notify
	if n == nil || rep == nil || rep.NotifiedAt != nil || rep.NotifyAttempts >= maxNotifyAttempt {
		return reconcile.Result{}, nil
	}
	if last := rep.LastNotifyAttemptAt; last != nil {
		if wait := last.Add(time.Duration(rep.NotifyAttempts) * notifyBackoff).Sub(s.now); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	var sec corev1.Secret
	err := s.r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: n.URLSecret.Name}, &sec)
	if err == nil {
		target := strings.TrimSpace(string(sec.Data[n.URLSecret.Key]))
		if target == "" {
			err = fmt.Errorf("key %q of Secret %s is empty", n.URLSecret.Key, n.URLSecret.Name)
		} else {
			err = post(ctx, target, s.ro, rep)
		}
	}
	saved := s.ro.DeepCopy()
	next := s.ro.Status.Report
	res := reconcile.Result{}
	if err != nil {
		next.NotifyAttempts++
		next.LastNotifyAttemptAt = &metav1.Time{Time: s.now}
		s.event(corev1.EventTypeWarning, "NotifyFailed", "sending the release report (attempt %d of %d): %v", next.NotifyAttempts, maxNotifyAttempt, err)
		res.RequeueAfter = time.Duration(next.NotifyAttempts) * notifyBackoff
	} else {
		next.NotifiedAt = &metav1.Time{Time: s.now}
	}
	if err := s.r.Client.Status().Patch(ctx, s.ro, client.MergeFromWithOptions(saved, client.MergeFromWithOptimisticLock{})); err != nil {
		return requeueOnConflict(err, "recording the report's delivery")
	}
	return res, nil
}

func post(ctx context.Context, target string, ro *v1alpha1.Rollout, rep *v1alpha1.ReleaseReport) error {
	body, err := json.Marshal(map[string]any{"rollout": ro.Name, "namespace": ro.Namespace, "report": rep})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The URL itself is secret: say what is wrong without it.
		return errors.New("the notification URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("posting the report: %w", scrubURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("posting the report: HTTP %d", resp.StatusCode)
	}
	return nil
}

// scrubURL drops the URL (which may hold a token) from a client error.
func scrubURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
