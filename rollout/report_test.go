package rollout

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/events"

	"github.com/promgate/promgate/api/v1alpha1"
)

func reportState() *state {
	ro := &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{WorkloadRef: v1alpha1.WorkloadRef{Name: "web"}}}
	ro.Status.CanaryRevision = "abc"
	return &state{r: &Reconciler{Recorder: events.NewFakeRecorder(100)}, ro: ro, now: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)}
}

func TestStepRecordsAreBounded(t *testing.T) {
	s := reportState()
	for i := range 30 {
		s.beginStep(int32(i%3 + 1))
	}
	st := s.ro.Status
	require.Len(t, st.Steps, maxStepRecords, "the earliest records are dropped")
	for _, r := range st.Steps[:len(st.Steps)-1] {
		assert.Equal(t, "Skipped", r.Verdict, "a step left for another is closed")
		assert.Equal(t, v1alpha1.DecidedByHuman, r.DecidedBy)
		assert.NotNil(t, r.EndedAt)
	}
	assert.Nil(t, st.Steps[len(st.Steps)-1].EndedAt, "the last one is still running")
}

func TestDecisiveMeasurementsAreBounded(t *testing.T) {
	run := &v1alpha1.AnalysisRun{}
	for i := range 8 {
		run.Status.MetricResults = append(run.Status.MetricResults, v1alpha1.MetricResult{
			Name: fmt.Sprintf("m%d", i), Phase: v1alpha1.AnalysisPhaseSuccessful,
			Measurements: []v1alpha1.Measurement{{Value: "1"}, {Value: fmt.Sprintf("0.%d", i)}},
		})
	}
	run.Status.MetricResults[1].Measurements = nil
	got := decisive(run)
	require.Len(t, got, maxMeasurements)
	assert.Equal(t, "m0=0.0 (Successful)", got[0], "the last measurement decides")
	assert.Equal(t, "m1=- (Successful)", got[1], "a metric with no measurement says so")
}

func TestVerdictsAndReport(t *testing.T) {
	s := reportState()
	start := s.now
	s.ro.Status.ReleaseStartedAt = nil
	s.beginStep(1)
	s.verdict("Successful", v1alpha1.DecidedByAnalysis, []string{"errors=0 (Successful)"})
	s.endStep("Successful", v1alpha1.DecidedByWindow, nil)
	s.beginStep(2)
	s.verdict("Successful", v1alpha1.DecidedByAnalysis, nil)
	s.now = start.Add(90 * time.Second)
	s.report(v1alpha1.RolloutPhaseAborted, v1alpha1.DecidedByAlert, "alert CanaryErrors firing")

	rep := s.ro.Status.Report
	require.NotNil(t, rep)
	assert.Empty(t, s.ro.Status.Steps, "the records move into the report")
	require.Len(t, rep.Steps, 2)
	assert.Equal(t, "Successful", rep.Steps[0].Verdict)
	assert.Equal(t, v1alpha1.DecidedByWindow, rep.Steps[0].DecidedBy, "who moved the step on")
	assert.Equal(t, []string{"errors=0 (Successful)"}, rep.Steps[0].Measurements)
	assert.Equal(t, "Aborted", rep.Steps[1].Verdict, "a step cut short is not Successful")
	assert.Equal(t, v1alpha1.DecidedByAlert, rep.Steps[1].DecidedBy)
	assert.Equal(t, v1alpha1.RolloutPhaseAborted, rep.Outcome)
	assert.Equal(t, "release of web revision abc aborted after 0s, decided by alert: alert CanaryErrors firing; steps 1:Successful 2:Aborted", rep.Summary)

	s2 := reportState()
	s2.beginStep(1)
	s2.verdict("Failed", v1alpha1.DecidedByAnalysis, nil)
	s2.report(v1alpha1.RolloutPhaseAborted, v1alpha1.DecidedByAnalysis, "x")
	assert.Equal(t, "Failed", s2.ro.Status.Report.Steps[0].Verdict, "an analysis verdict is kept")
}

func TestNotificationPostErrorsHideTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	s := reportState()
	s.report(v1alpha1.RolloutPhaseCompleted, v1alpha1.DecidedByWindow, "every step passed")
	err := post(t.Context(), srv.URL+"/hook?token=s3cret", s.ro, s.ro.Status.Report)
	require.EqualError(t, err, "posting the report: HTTP 502")

	err = post(t.Context(), "http://127.0.0.1:1/hook?token=s3cret", s.ro, s.ro.Status.Report)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret", "the URL may hold a token")
}
