package rollout

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

// Bounds of a release's record: status stays small however long a release runs.
const (
	maxStepRecords  = 20
	maxMeasurements = 5
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
