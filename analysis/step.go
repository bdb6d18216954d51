package analysis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
)

// Taken is one measurement taken by Step, for logs, events, metrics and the CLI's live
// view.
type Taken struct {
	Metric      string
	Measurement v1alpha1.Measurement
	// Result is what the provider returned, as the conditions judged it; its Type is
	// model.ValNone when the provider failed.
	Result metricsq.Result
}

// Step takes every measurement due at now, updates status (metric counters and phases,
// the run's phase and message) and returns the measurements taken and when the next one
// is due; next is zero once the run is complete. terminate ends the run with what was
// measured so far. Step reads and writes only status, so a restarted controller resumes
// exactly where the last persisted status left off.
func (p *Plan) Step(ctx context.Context, st *v1alpha1.AnalysisRunStatus, now time.Time, terminate bool) (taken []Taken, next time.Time) {
	if st.Phase.Completed() {
		return nil, time.Time{}
	}
	if st.StartedAt == nil {
		// Status times are stored with second precision; rounding the start up keeps
		// every tick at or after the real start, so no measurement looks at data from
		// before the run existed.
		st.StartedAt = &metav1.Time{Time: alignUp(now, time.Second)}
		st.Phase = v1alpha1.AnalysisPhaseRunning
	}
	results := p.alignResults(st)

	// retryAt is, for a metric whose measurement is still under way (a Job running), when
	// to ask about it again; nothing of it is in status yet.
	retryAt := make([]time.Time, len(p.Metrics))
	if !terminate {
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for i, pm := range p.Metrics {
			mr := results[i]
			if mr.Phase.Completed() {
				continue
			}
			tick := p.due(pm, mr, st.StartedAt.Time)
			if tick.After(now) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, res, retry := p.measure(ctx, pm, providers.Query{Tick: tick, Seq: mr.Count + mr.Error})
				if retry > 0 {
					retryAt[i] = now.Add(retry)
					return
				}
				mu.Lock()
				taken = append(taken, Taken{Metric: pm.Spec.Name, Measurement: m, Result: res})
				mu.Unlock()
				record(pm, mr, m)
			}()
		}
		wg.Wait()
	}

	p.decide(st, results, terminate, now)
	if st.Phase.Completed() {
		return taken, time.Time{}
	}
	for i, pm := range p.Metrics {
		if results[i].Phase.Completed() {
			continue
		}
		t := retryAt[i]
		if t.IsZero() {
			t = p.due(pm, results[i], st.StartedAt.Time)
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return taken, next
}

// alignResults makes status hold one result per planned metric, in plan order, keeping
// what was already measured.
func (p *Plan) alignResults(st *v1alpha1.AnalysisRunStatus) []*v1alpha1.MetricResult {
	byName := map[string]v1alpha1.MetricResult{}
	for _, mr := range st.MetricResults {
		byName[mr.Name] = mr
	}
	out := make([]v1alpha1.MetricResult, len(p.Metrics))
	for i, pm := range p.Metrics {
		mr, ok := byName[pm.Spec.Name]
		if !ok {
			mr = v1alpha1.MetricResult{Name: pm.Spec.Name, Phase: v1alpha1.AnalysisPhasePending}
		}
		mr.DryRun = pm.DryRun
		out[i] = mr
	}
	st.MetricResults = out
	ptrs := make([]*v1alpha1.MetricResult, len(out))
	for i := range out {
		ptrs[i] = &st.MetricResults[i]
	}
	return ptrs
}

// due is the next measurement's tick, from the last measurement's tick in status.
func (p *Plan) due(pm *PlannedMetric, mr *v1alpha1.MetricResult, startedAt time.Time) time.Time {
	var last *time.Time
	if n := len(mr.Measurements); n > 0 && mr.Measurements[n-1].StartedAt != nil {
		t := mr.Measurements[n-1].StartedAt.Time
		last = &t
	}
	return nextTick(startedAt, pm.InitialDelay, pm.Interval, last)
}

// measure takes measurement q and judges it (DESIGN.md section 2): a provider error is
// Error; no data follows the metric's noData policy; otherwise a provider's own verdict
// (a kind whose Answers are Verdicts), or else the conditions, decide. A measurement still
// under way gives nothing but how soon to ask again (retry > 0).
func (p *Plan) measure(ctx context.Context, pm *PlannedMetric, q providers.Query) (m v1alpha1.Measurement, r metricsq.Result, retry time.Duration) {
	m = v1alpha1.Measurement{StartedAt: &metav1.Time{Time: q.Tick}}
	res, err := pm.Provider.Measure(ctx, q)
	m.FinishedAt = &metav1.Time{Time: time.Now()}
	if err != nil {
		m.Phase, m.Message = v1alpha1.AnalysisPhaseError, p.Mask(err.Error())
		return m, metricsq.Result{Type: model.ValNone}, 0
	}
	v := res.Verdict
	if v != nil && !v.Phase.Completed() {
		return m, metricsq.Result{}, max(v.RetryAfter, time.Second)
	}
	for _, w := range append(res.Warnings, res.Infos...) {
		m.Warnings = append(m.Warnings, p.Mask(w))
	}
	m.Value = res.Result.String()
	if v != nil {
		// A verdict's value says what was judged and why (a bare score would not), and it
		// may quote labels, which may hold an arg's secret.
		m.Value = p.Mask(v.Value)
	}
	if res.Result.NoData && pm.NoData != v1alpha1.NoDataEvaluate {
		why := noDataReason(res.Result)
		if v != nil {
			why = p.Mask(v.Message)
		}
		m.Phase = v1alpha1.AnalysisPhase(pm.NoData)
		m.Message = fmt.Sprintf("no data (%s): counted as %s by noData", why, pm.NoData)
		return m, res.Result, 0
	}
	if v != nil {
		m.Phase, m.Message = v.Phase, p.Mask(v.Message)
		return m, res.Result, 0
	}
	m.Phase, m.Message = judge(pm, res.Result)
	m.Message = p.Mask(m.Message)
	return m, res.Result, 0
}

func noDataReason(r metricsq.Result) string {
	switch {
	case r.Document != nil && r.Document.Value == nil:
		return "null"
	case len(r.Values) == 0:
		return "empty result"
	}
	return "only NaN or ±Inf"
}

// judge applies the conditions: neither → Successful; success only → false is Failed;
// failure only → false is Successful; both → failure wins, neither true is Inconclusive.
// An expression error is Error.
func judge(pm *PlannedMetric, r metricsq.Result) (v1alpha1.AnalysisPhase, string) {
	if pm.Failure != nil {
		failed, err := pm.Failure.Eval(r)
		if err != nil {
			return v1alpha1.AnalysisPhaseError, fmt.Sprintf("failureCondition: %v", err)
		}
		if failed {
			return v1alpha1.AnalysisPhaseFailed, fmt.Sprintf("failureCondition %q is true", pm.Failure)
		}
	}
	if pm.Success != nil {
		ok, err := pm.Success.Eval(r)
		if err != nil {
			return v1alpha1.AnalysisPhaseError, fmt.Sprintf("successCondition: %v", err)
		}
		switch {
		case ok:
			return v1alpha1.AnalysisPhaseSuccessful, fmt.Sprintf("successCondition %q is true", pm.Success)
		case pm.Failure != nil:
			return v1alpha1.AnalysisPhaseInconclusive, fmt.Sprintf("neither successCondition %q nor failureCondition %q is true", pm.Success, pm.Failure)
		default:
			return v1alpha1.AnalysisPhaseFailed, fmt.Sprintf("successCondition %q is false", pm.Success)
		}
	}
	if pm.Failure != nil {
		return v1alpha1.AnalysisPhaseSuccessful, fmt.Sprintf("failureCondition %q is false", pm.Failure)
	}
	return v1alpha1.AnalysisPhaseSuccessful, "no condition: any value passes"
}

// record adds m to the metric's counters and history and re-evaluates its phase.
func record(pm *PlannedMetric, mr *v1alpha1.MetricResult, m v1alpha1.Measurement) {
	switch m.Phase {
	case v1alpha1.AnalysisPhaseError:
		mr.Error++
		mr.ConsecutiveError++
		mr.ConsecutiveSuccess = 0
	case v1alpha1.AnalysisPhaseSuccessful:
		mr.Count++
		mr.Successful++
		mr.ConsecutiveError = 0
		mr.ConsecutiveSuccess++
	case v1alpha1.AnalysisPhaseFailed:
		mr.Count++
		mr.Failed++
		mr.ConsecutiveError = 0
		mr.ConsecutiveSuccess = 0
	case v1alpha1.AnalysisPhaseInconclusive:
		mr.Count++
		mr.Inconclusive++
		mr.ConsecutiveError = 0
		mr.ConsecutiveSuccess = 0
	}
	mr.Phase, mr.Message = metricPhase(pm, mr, m)
	if m.Phase == v1alpha1.AnalysisPhaseSuccessful {
		// A success is explained by the condition in the spec and the metric's message;
		// repeating it in every kept measurement only makes each status write bigger.
		m.Message = ""
	}
	mr.Measurements = append(mr.Measurements, m)
	if over := len(mr.Measurements) - pm.Retention; over > 0 {
		mr.Measurements = append([]v1alpha1.Measurement(nil), mr.Measurements[over:]...)
	}
}

// metricPhase ends a metric, as Argo Rollouts does: failed > failureLimit (unless -1) →
// Failed; inconclusive > inconclusiveLimit → Inconclusive; consecutive errors >
// consecutiveErrorLimit → Error; consecutiveSuccessLimit reached → Successful; count
// reached → Successful, unless a consecutiveSuccessLimit was to be reached first: then
// Inconclusive with a failureLimit, Failed without one.
func metricPhase(pm *PlannedMetric, mr *v1alpha1.MetricResult, last v1alpha1.Measurement) (v1alpha1.AnalysisPhase, string) {
	evidence := fmt.Sprintf("last value %s: %s", orNone(last.Value), last.Message)
	countReached := pm.Count > 0 && mr.Count >= pm.Count
	switch {
	case pm.FailureLimit >= 0 && mr.Failed > pm.FailureLimit:
		return v1alpha1.AnalysisPhaseFailed, fmt.Sprintf("%d failed measurements exceed failureLimit %d; %s", mr.Failed, pm.FailureLimit, evidence)
	case mr.Inconclusive > pm.InconclusiveLimit:
		return v1alpha1.AnalysisPhaseInconclusive, fmt.Sprintf("%d inconclusive measurements exceed inconclusiveLimit %d; %s", mr.Inconclusive, pm.InconclusiveLimit, evidence)
	case mr.ConsecutiveError > pm.ConsecutiveErrorLimit:
		return v1alpha1.AnalysisPhaseError, fmt.Sprintf("%d consecutive errors exceed consecutiveErrorLimit %d; %s", mr.ConsecutiveError, pm.ConsecutiveErrorLimit, evidence)
	case pm.ConsecutiveSuccessLimit > 0 && mr.ConsecutiveSuccess >= pm.ConsecutiveSuccessLimit:
		return v1alpha1.AnalysisPhaseSuccessful, fmt.Sprintf("%d consecutive successes reached consecutiveSuccessLimit; %s", mr.ConsecutiveSuccess, evidence)
	case countReached && pm.ConsecutiveSuccessLimit > 0 && pm.FailureLimit >= 0:
		return v1alpha1.AnalysisPhaseInconclusive, fmt.Sprintf("%d measurements reached count without %d consecutive successes (consecutiveSuccessLimit), and failureLimit %d was not exceeded; %s", mr.Count, pm.ConsecutiveSuccessLimit, pm.FailureLimit, evidence)
	case countReached && pm.ConsecutiveSuccessLimit > 0:
		return v1alpha1.AnalysisPhaseFailed, fmt.Sprintf("%d measurements reached count without %d consecutive successes (consecutiveSuccessLimit); %s", mr.Count, pm.ConsecutiveSuccessLimit, evidence)
	case countReached:
		return v1alpha1.AnalysisPhaseSuccessful, fmt.Sprintf("%d of %d measurements taken within limits; %s", mr.Count, pm.Count, evidence)
	}
	return v1alpha1.AnalysisPhaseRunning, evidence
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// severity orders verdicts: Successful < Inconclusive < Error < Failed.
func severity(p v1alpha1.AnalysisPhase) int {
	switch p {
	case v1alpha1.AnalysisPhaseSuccessful:
		return 1
	case v1alpha1.AnalysisPhaseInconclusive:
		return 2
	case v1alpha1.AnalysisPhaseError:
		return 3
	case v1alpha1.AnalysisPhaseFailed:
		return 4
	}
	return 0
}

// decide sets the run's phase: the worst non-dry-run metric, failing fast on the first bad
// one; dry-run metrics are reported, never decide.
func (p *Plan) decide(st *v1alpha1.AnalysisRunStatus, results []*v1alpha1.MetricResult, terminate bool, now time.Time) {
	var (
		worst    *v1alpha1.MetricResult
		deciding int
		done     = true
	)
	for i, mr := range results {
		if p.Metrics[i].DryRun {
			continue
		}
		deciding++
		if !mr.Phase.Completed() {
			done = false
			continue
		}
		if worst == nil || severity(mr.Phase) > severity(worst.Phase) {
			worst = mr
		}
	}
	failFast := worst != nil && worst.Phase != v1alpha1.AnalysisPhaseSuccessful
	if deciding == 0 {
		done = allCompleted(results)
	}
	if !done && !failFast && !terminate {
		st.Phase = v1alpha1.AnalysisPhaseRunning
		st.RunSummary, st.DryRunSummary = summarize(p, results)
		return
	}
	for _, mr := range results {
		if !mr.Phase.Completed() {
			stopEarly(mr, terminate)
		}
	}
	if worst == nil || !failFast {
		worst = nil
		for i, mr := range results {
			if !p.Metrics[i].DryRun && (worst == nil || severity(mr.Phase) > severity(worst.Phase)) {
				worst = mr
			}
		}
	}
	st.RunSummary, st.DryRunSummary = summarize(p, results)
	st.CompletedAt = &metav1.Time{Time: now}
	if worst == nil {
		st.Phase, st.Message = v1alpha1.AnalysisPhaseSuccessful, "only dry-run metrics: nothing decides"
		return
	}
	st.Phase = worst.Phase
	st.Message = fmt.Sprintf("metric %q %s: %s", worst.Name, worst.Phase, worst.Message)
	if terminate && !failFast {
		st.Message = "terminated; " + st.Message
	}
}

// stopEarly ends a metric that was still measuring when the run ended. With no counted
// measurement there is no evidence, so it is Inconclusive, never Successful.
func stopEarly(mr *v1alpha1.MetricResult, terminate bool) {
	why := "stopped: another metric decided the run"
	if terminate {
		why = "stopped: the run was terminated"
	}
	if mr.Count == 0 {
		mr.Phase, mr.Message = v1alpha1.AnalysisPhaseInconclusive, why+" before any counted measurement"
		return
	}
	mr.Phase, mr.Message = v1alpha1.AnalysisPhaseSuccessful, fmt.Sprintf("%s after %d measurements within limits", why, mr.Count)
}

func allCompleted(results []*v1alpha1.MetricResult) bool {
	for _, mr := range results {
		if !mr.Phase.Completed() {
			return false
		}
	}
	return true
}

func summarize(p *Plan, results []*v1alpha1.MetricResult) (v1alpha1.RunSummary, *v1alpha1.RunSummary) {
	var run, dry v1alpha1.RunSummary
	for i, mr := range results {
		s := &run
		if p.Metrics[i].DryRun {
			s = &dry
		}
		s.Count++
		switch mr.Phase {
		case v1alpha1.AnalysisPhaseSuccessful:
			s.Successful++
		case v1alpha1.AnalysisPhaseFailed:
			s.Failed++
		case v1alpha1.AnalysisPhaseInconclusive:
			s.Inconclusive++
		case v1alpha1.AnalysisPhaseError:
			s.Error++
		}
	}
	if dry.Count == 0 {
		return run, nil
	}
	return run, &dry
}
