package analysis

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/shared"
)

// scripted is a provider returning one scripted answer per call; a nil vector is an error.
type scripted struct {
	answers []answer
	calls   int
}

type answer struct {
	vector  []float64 // nil with err set: provider error
	scalar  *float64
	verdict *providers.Verdict
	err     error
}

func (s *scripted) Measure(_ context.Context, q providers.Query) (providers.Measurement, error) {
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	if a.err != nil {
		return providers.Measurement{}, a.err
	}
	var v model.Value
	if a.scalar != nil {
		v = &model.Scalar{Value: model.SampleValue(*a.scalar), Timestamp: model.TimeFromUnixNano(q.Tick.UnixNano())}
	} else {
		vec := model.Vector{}
		for i, f := range a.vector {
			vec = append(vec, &model.Sample{Metric: model.Metric{"pod": model.LabelValue(string(rune('a' + i)))}, Value: model.SampleValue(f)})
		}
		v = vec
	}
	res, err := metricsq.Shape(v)
	if err != nil {
		return providers.Measurement{}, err
	}
	return providers.Measurement{Result: res, Verdict: a.verdict}, nil
}

func vec(v ...float64) answer { return answer{vector: append([]float64{}, v...)} }
func fail(msg string) answer  { return answer{err: errors.New(msg)} }

var nan = math.NaN()

type metricOpt func(*PlannedMetric)

func planned(t *testing.T, answers []answer, opts ...metricOpt) *PlannedMetric {
	t.Helper()
	pm := &PlannedMetric{
		Spec:                  v1alpha1.Metric{Name: "m"},
		Provider:              &scripted{answers: answers},
		Retention:             DefaultMeasurementRetention,
		Count:                 1,
		ConsecutiveErrorLimit: DefaultConsecutiveErrorLimit,
		NoData:                v1alpha1.NoDataInconclusive,
	}
	for _, o := range opts {
		o(pm)
	}
	return pm
}

func success(src string) metricOpt {
	return func(pm *PlannedMetric) { pm.Success = mustCompile(src) }
}

func failure(src string) metricOpt {
	return func(pm *PlannedMetric) { pm.Failure = mustCompile(src) }
}

func every(interval time.Duration, count int32) metricOpt {
	return func(pm *PlannedMetric) { pm.Interval, pm.Count = interval, count }
}

func noData(p v1alpha1.NoDataPolicy) metricOpt { return func(pm *PlannedMetric) { pm.NoData = p } }

func named(name string) metricOpt { return func(pm *PlannedMetric) { pm.Spec.Name = name } }

func dryRun() metricOpt { return func(pm *PlannedMetric) { pm.DryRun = true } }

func mustCompile(src string) *Condition {
	c, err := CompileCondition(src)
	if err != nil {
		panic(err)
	}
	return c
}

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

// runToEnd steps a plan second by second until the run completes (or 120 steps).
func runToEnd(t *testing.T, p *Plan) *v1alpha1.AnalysisRunStatus {
	t.Helper()
	st := &v1alpha1.AnalysisRunStatus{}
	for i := 0; i < 120 && !st.Phase.Completed(); i++ {
		p.Step(context.Background(), st, t0.Add(time.Duration(i)*time.Second), false)
	}
	require.True(t, st.Phase.Completed(), "run did not complete: %+v", st)
	return st
}

func TestMeasurementPhases(t *testing.T) {
	cases := []struct {
		name    string
		answer  answer
		opts    []metricOpt
		want    v1alpha1.AnalysisPhase
		message string
	}{
		{"no conditions: any value passes", vec(0.1), nil, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"success only, true", vec(0.99), []metricOpt{success("result[0] >= 0.95")}, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"success only, false is Failed", vec(0.9), []metricOpt{success("result[0] >= 0.95")}, v1alpha1.AnalysisPhaseFailed, `successCondition "result[0] >= 0.95" is false`},
		{"failure only, false is Successful", vec(0.01), []metricOpt{failure("result[0] > 0.05")}, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"failure only, true", vec(0.2), []metricOpt{failure("result[0] > 0.05")}, v1alpha1.AnalysisPhaseFailed, `failureCondition "result[0] > 0.05" is true`},
		{"both: failure wins", vec(0.5), []metricOpt{success("result[0] > 0.1"), failure("result[0] > 0.4")}, v1alpha1.AnalysisPhaseFailed, "failureCondition"},
		{"both: neither true is Inconclusive", vec(0.3), []metricOpt{success("result[0] > 0.9"), failure("result[0] < 0.1")}, v1alpha1.AnalysisPhaseInconclusive, "neither"},
		{"expression error is Error", vec(0.3), []metricOpt{success("result[3] > 0.9")}, v1alpha1.AnalysisPhaseError, "index out of range"},
		{"scalar condition on a vector is Error", vec(0.3), []metricOpt{success("result > 0.1")}, v1alpha1.AnalysisPhaseError, "on a vector result"},
		{"empty vector is no data: Inconclusive", vec(), []metricOpt{success("true")}, v1alpha1.AnalysisPhaseInconclusive, "no data (empty result)"},
		{"NaN only is no data: Inconclusive", vec(nan), []metricOpt{success("true")}, v1alpha1.AnalysisPhaseInconclusive, "only NaN"},
		{"±Inf only is no data", vec(math.Inf(1), math.Inf(-1)), []metricOpt{success("true")}, v1alpha1.AnalysisPhaseInconclusive, "only NaN or ±Inf"},
		{"noData Failed", vec(), []metricOpt{noData(v1alpha1.NoDataFailed)}, v1alpha1.AnalysisPhaseFailed, "counted as Failed"},
		{"noData Error", vec(nan), []metricOpt{noData(v1alpha1.NoDataError)}, v1alpha1.AnalysisPhaseError, "counted as Error"},
		{"noData Evaluate hands NaN to the conditions", vec(nan), []metricOpt{noData(v1alpha1.NoDataEvaluate), success("isNaN(result[0])")}, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"noData Evaluate with a plain condition fails on NaN", vec(nan), []metricOpt{noData(v1alpha1.NoDataEvaluate), success("result[0] >= 0.95")}, v1alpha1.AnalysisPhaseFailed, ""},
		{"noData Evaluate on empty uses default()", vec(), []metricOpt{noData(v1alpha1.NoDataEvaluate), success("default(result[0], 1) >= 0.95")}, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"one NaN among numbers is data", vec(nan, 0.99), []metricOpt{success("result[1] >= 0.95")}, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"multi-series all()", vec(0.99, 0.97), []metricOpt{success("all(series, .value >= 0.95)")}, v1alpha1.AnalysisPhaseSuccessful, ""},
		{"multi-series labels", vec(0.99, 0.5), []metricOpt{failure(`any(series, .labels.pod == "b" && .value < 0.9)`)}, v1alpha1.AnalysisPhaseFailed, ""},
		{"value with several series is Error", vec(0.99, 0.97), []metricOpt{success("value >= 0.95")}, v1alpha1.AnalysisPhaseError, "exactly one series"},
		{"provider error is Error", fail("connection refused"), []metricOpt{success("true")}, v1alpha1.AnalysisPhaseError, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Metrics: []*PlannedMetric{planned(t, []answer{tc.answer}, tc.opts...)}}
			st := &v1alpha1.AnalysisRunStatus{}
			taken, _ := p.Step(context.Background(), st, t0, false)
			require.Len(t, taken, 1)
			m := taken[0].Measurement
			assert.Equal(t, tc.want, m.Phase, m.Message)
			assert.Contains(t, m.Message, tc.message)
		})
	}
}

// TestProviderVerdict: a judging provider's verdict decides in place of conditions, its
// value replaces the bare result's, and no data still goes to the noData policy first.
func TestProviderVerdict(t *testing.T) {
	judged := func(score float64, phase v1alpha1.AnalysisPhase) answer {
		return answer{scalar: &score, verdict: &providers.Verdict{Phase: phase, Value: "score and why", Message: "the judge says so"}}
	}
	for _, tc := range []struct {
		name    string
		answer  answer
		opts    []metricOpt
		want    v1alpha1.AnalysisPhase
		message string
	}{
		{"Failed", judged(40, v1alpha1.AnalysisPhaseFailed), nil, v1alpha1.AnalysisPhaseFailed, "the judge says so"},
		{"Inconclusive", judged(80, v1alpha1.AnalysisPhaseInconclusive), nil, v1alpha1.AnalysisPhaseInconclusive, "the judge says so"},
		{"no data goes to noData first", judged(nan, v1alpha1.AnalysisPhaseFailed), nil, v1alpha1.AnalysisPhaseInconclusive,
			"no data (the judge says so): counted as Inconclusive by noData"},
		{"noData Evaluate hands no data to the verdict", judged(nan, v1alpha1.AnalysisPhaseFailed), []metricOpt{noData(v1alpha1.NoDataEvaluate)}, v1alpha1.AnalysisPhaseFailed, "the judge says so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Metrics: []*PlannedMetric{planned(t, []answer{tc.answer}, tc.opts...)}}
			taken, _ := p.Step(context.Background(), &v1alpha1.AnalysisRunStatus{}, t0, false)
			require.Len(t, taken, 1)
			m := taken[0].Measurement
			assert.Equal(t, tc.want, m.Phase)
			assert.Equal(t, tc.message, m.Message)
			assert.Equal(t, "score and why", m.Value)
		})
	}
}

func TestConditionsThatAreNotBoolAreRejectedAtCompile(t *testing.T) {
	for _, src := range []string{"result[0] + 1", `"ok"`, "len(result)", "series"} {
		_, err := CompileCondition(src)
		assert.Error(t, err, src)
	}
}

func TestMetricLimits(t *testing.T) {
	good, bad, broken := vec(0.99), vec(0.5), fail("timeout")
	cases := []struct {
		name    string
		answers []answer
		opts    []metricOpt
		want    v1alpha1.AnalysisPhase
		check   func(t *testing.T, mr v1alpha1.MetricResult)
	}{
		{"count reached", []answer{good}, []metricOpt{success("result[0] > 0.9"), every(time.Second, 3)}, v1alpha1.AnalysisPhaseSuccessful,
			func(t *testing.T, mr v1alpha1.MetricResult) { assert.Equal(t, int32(3), mr.Count) }},
		{"failureLimit tolerates, then fails", []answer{bad, good, bad, good, bad}, []metricOpt{success("result[0] > 0.9"), every(time.Second, 10), func(pm *PlannedMetric) { pm.FailureLimit = 2 }}, v1alpha1.AnalysisPhaseFailed,
			func(t *testing.T, mr v1alpha1.MetricResult) {
				assert.Equal(t, int32(3), mr.Failed)
				assert.Equal(t, int32(5), mr.Count)
			}},
		{"inconclusiveLimit", []answer{vec(), vec()}, []metricOpt{success("true"), every(time.Second, 5), func(pm *PlannedMetric) { pm.InconclusiveLimit = 1 }}, v1alpha1.AnalysisPhaseInconclusive,
			func(t *testing.T, mr v1alpha1.MetricResult) { assert.Equal(t, int32(2), mr.Inconclusive) }},
		{"errors never count and end the metric past the limit", []answer{broken}, []metricOpt{success("true"), every(time.Second, 3)}, v1alpha1.AnalysisPhaseError,
			func(t *testing.T, mr v1alpha1.MetricResult) {
				assert.Equal(t, int32(0), mr.Count)
				assert.Equal(t, int32(5), mr.Error, "default consecutiveErrorLimit 4: the fifth in a row decides")
			}},
		{"a success resets consecutive errors", []answer{broken, broken, broken, broken, good, broken, broken, broken, broken, good}, []metricOpt{success("true"), every(time.Second, 2)}, v1alpha1.AnalysisPhaseSuccessful,
			func(t *testing.T, mr v1alpha1.MetricResult) {
				assert.Equal(t, int32(8), mr.Error)
				assert.Equal(t, int32(0), mr.ConsecutiveError)
			}},
		{"consecutiveSuccessLimit", []answer{bad, good, good}, []metricOpt{success("result[0] > 0.9"), every(time.Second, 0), func(pm *PlannedMetric) {
			pm.FailureLimit, pm.ConsecutiveSuccessLimit = 5, 2
		}}, v1alpha1.AnalysisPhaseSuccessful,
			func(t *testing.T, mr v1alpha1.MetricResult) { assert.Equal(t, int32(3), mr.Count) }},
		{"retention bounds history, counters keep counting", []answer{good}, []metricOpt{success("true"), every(time.Second, 15), func(pm *PlannedMetric) { pm.Retention = 4 }}, v1alpha1.AnalysisPhaseSuccessful,
			func(t *testing.T, mr v1alpha1.MetricResult) {
				assert.Len(t, mr.Measurements, 4)
				assert.Equal(t, int32(15), mr.Successful)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Metrics: []*PlannedMetric{planned(t, tc.answers, tc.opts...)}}
			st := runToEnd(t, p)
			assert.Equal(t, tc.want, st.Phase, st.Message)
			tc.check(t, st.MetricResults[0])
		})
	}
}

func TestRunVerdicts(t *testing.T) {
	t.Run("worst non-dry-run metric decides", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{
			planned(t, []answer{vec(0.99)}, named("ok"), success("result[0] > 0.9")),
			planned(t, []answer{vec()}, named("nodata"), success("true")),
		}}
		st := runToEnd(t, p)
		assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, st.Phase)
		assert.Contains(t, st.Message, `metric "nodata" Inconclusive`)
		assert.Equal(t, v1alpha1.RunSummary{Count: 2, Successful: 1, Inconclusive: 1}, st.RunSummary)
	})
	t.Run("a dry-run metric failing never fails the run", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{
			planned(t, []answer{vec(0.99)}, named("ok"), success("result[0] > 0.9")),
			planned(t, []answer{vec(0.1)}, named("experimental"), success("result[0] > 0.9"), dryRun()),
		}}
		st := runToEnd(t, p)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, st.Phase)
		require.NotNil(t, st.DryRunSummary)
		assert.Equal(t, int32(1), st.DryRunSummary.Failed)
		assert.True(t, st.MetricResults[1].DryRun)
	})
	t.Run("only dry-run metrics: nothing decides", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{planned(t, []answer{vec(0.1)}, success("result[0] > 0.9"), dryRun())}}
		st := runToEnd(t, p)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, st.Phase)
		assert.Contains(t, st.Message, "only dry-run metrics")
	})
	t.Run("fail fast stops the other metrics", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{
			planned(t, []answer{vec(0.99)}, named("slow"), success("true"), every(time.Second, 100)),
			planned(t, []answer{vec(0.99), vec(0.1)}, named("errors"), failure("result[0] < 0.5"), every(time.Second, 100)),
		}}
		st := runToEnd(t, p)
		assert.Equal(t, v1alpha1.AnalysisPhaseFailed, st.Phase)
		assert.Contains(t, st.Message, `metric "errors" Failed`)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, st.MetricResults[0].Phase, "stopped with evidence")
		assert.Contains(t, st.MetricResults[0].Message, "another metric decided")
	})
	t.Run("a metric stopped before any measurement is Inconclusive", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{
			planned(t, []answer{vec(0.99)}, named("late"), success("true"), func(pm *PlannedMetric) { pm.InitialDelay = time.Minute }),
			planned(t, []answer{vec(0.1)}, named("bad"), success("result[0] > 0.5")),
		}}
		st := runToEnd(t, p)
		assert.Equal(t, v1alpha1.AnalysisPhaseFailed, st.Phase)
		assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, st.MetricResults[0].Phase)
	})
	t.Run("terminate with no evidence is never Successful", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{planned(t, []answer{vec(0.99)}, success("true"), every(time.Minute, 0))}}
		st := &v1alpha1.AnalysisRunStatus{}
		p.Step(context.Background(), st, t0.Add(-time.Second), false)
		taken, next := p.Step(context.Background(), st, t0.Add(-time.Second), true)
		assert.Empty(t, taken)
		assert.True(t, next.IsZero())
		assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, st.Phase)
		assert.Contains(t, st.Message, "terminated")
	})
	t.Run("terminate after good measurements is Successful", func(t *testing.T) {
		p := &Plan{Metrics: []*PlannedMetric{planned(t, []answer{vec(0.99)}, success("true"), every(time.Second, 0))}}
		st := &v1alpha1.AnalysisRunStatus{}
		for i := range 3 {
			p.Step(context.Background(), st, t0.Add(time.Duration(i)*time.Second), false)
		}
		p.Step(context.Background(), st, t0.Add(3*time.Second), true)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, st.Phase)
		assert.Equal(t, int32(3), st.MetricResults[0].Successful)
	})
}

func TestScheduling(t *testing.T) {
	ctx := context.Background()
	pm := planned(t, []answer{vec(0.99)}, success("true"), every(10*time.Second, 0), func(pm *PlannedMetric) { pm.InitialDelay = 20 * time.Second })
	p := &Plan{Metrics: []*PlannedMetric{pm}}
	st := &v1alpha1.AnalysisRunStatus{}
	start := t0.Add(300 * time.Millisecond)

	taken, next := p.Step(ctx, st, start, false)
	assert.Empty(t, taken, "nothing before the initial delay")
	assert.Equal(t, t0.Add(30*time.Second), next, "start rounded up to the second, plus the delay, on the 10 s grid")

	taken, _ = p.Step(ctx, st, next.Add(-time.Millisecond), false)
	assert.Empty(t, taken, "not before the tick")
	taken, next = p.Step(ctx, st, t0.Add(30*time.Second), false)
	require.Len(t, taken, 1)
	assert.Equal(t, t0.Add(30*time.Second), taken[0].Measurement.StartedAt.Time)
	assert.Equal(t, t0.Add(40*time.Second), next)

	taken, _ = p.Step(ctx, st, t0.Add(35*time.Second), false)
	assert.Empty(t, taken, "a reconcile between ticks measures nothing")

	// A restarted controller only has status: a fresh plan resumes from it, late, and
	// takes exactly the one measurement that is due.
	restarted := &Plan{Metrics: []*PlannedMetric{planned(t, []answer{vec(0.99)}, success("true"), every(10*time.Second, 0), func(pm *PlannedMetric) { pm.InitialDelay = 20 * time.Second })}}
	copied := st.DeepCopy()
	taken, next = restarted.Step(ctx, copied, t0.Add(47*time.Second), false)
	require.Len(t, taken, 1)
	assert.Equal(t, t0.Add(40*time.Second), taken[0].Measurement.StartedAt.Time, "the missed tick, not a new one")
	assert.Equal(t, t0.Add(50*time.Second), next)
	assert.Equal(t, int32(2), copied.MetricResults[0].Successful)
	assert.Equal(t, v1alpha1.AnalysisPhaseRunning, copied.Phase, "an indefinite metric keeps going")

	done := &v1alpha1.AnalysisRunStatus{Phase: v1alpha1.AnalysisPhaseFailed}
	taken, next = p.Step(ctx, done, t0, false)
	assert.Empty(t, taken)
	assert.True(t, next.IsZero(), "a completed run is left alone")
}

func TestPrepare(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "http://prometheus:9090", Cluster{})
	ctx := context.Background()
	metric := func(mut func(*v1alpha1.Metric)) v1alpha1.AnalysisRunSpec {
		m := v1alpha1.Metric{Name: "rate", SuccessCondition: "result[0] > 0.9", Provider: v1alpha1.MetricProvider{
			Prometheus: &v1alpha1.PrometheusMetric{Query: `sum(rate(x{svc="{{args.svc}}"}[1m]))`},
		}}
		mut(&m)
		return v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}, Args: []v1alpha1.Argument{{Name: "svc", Value: ptr.To("a")}}}
	}
	for _, tc := range []struct {
		name  string
		mut   func(*v1alpha1.Metric)
		field string
	}{
		{"missing arg", func(m *v1alpha1.Metric) { m.Provider.Prometheus.Query = "x{a=\"{{args.nope}}\"}" }, `metrics[rate].provider.prometheus.query: argument "nope" is not defined`},
		{"bad PromQL", func(m *v1alpha1.Metric) { m.Provider.Prometheus.Query = "rate(x[1m]" }, "metrics[rate].provider.prometheus.query: invalid PromQL"},
		{"bad condition", func(m *v1alpha1.Metric) { m.SuccessCondition = "result[0] >" }, "metrics[rate].successCondition"},
		{"bad duration", func(m *v1alpha1.Metric) { m.Interval = "soon" }, "metrics[rate].interval"},
		{"fractional interval", func(m *v1alpha1.Metric) { m.Interval = "1500ms" }, "metrics[rate].interval: 1.5s is not a whole number of seconds"},
		{"count without interval", func(m *v1alpha1.Metric) { m.Count = ptr.To(intstr.FromInt32(3)) }, "metrics[rate].count"},
		{"failureLimit not below count", func(m *v1alpha1.Metric) {
			m.Interval, m.Count, m.FailureLimit = "1s", ptr.To(intstr.FromInt32(2)), ptr.To(intstr.FromInt32(2))
		}, "could never fail"},
		{"unknown noData", func(m *v1alpha1.Metric) { m.NoData = "Ignore" }, "metrics[rate].noData"},
		{"two providers", func(m *v1alpha1.Metric) { m.Provider.Web = &v1alpha1.WebMetric{URL: "http://x", JSONPath: "{$.a}"} }, "metrics[rate].provider: exactly one provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := metric(tc.mut)
			_, err := engine.Prepare(ctx, &spec, nil, nil)
			require.Error(t, err)
			var fe *field.Error
			require.ErrorAs(t, err, &fe)
			assert.Contains(t, err.Error(), tc.field)
		})
	}

	t.Run("every problem of every metric at once", func(t *testing.T) {
		spec := v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{
			{Name: "rate", Interval: "soon", SuccessCondition: "result[0] >", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
				Query: `x{a="{{args.a}}", b="{{args.b}}"}`, Timeout: ptr.To(intstr.FromString("-1s")),
			}}},
			{Name: "page", NoData: "Ignore", Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "ftp://x", JSONPath: "{$.a", Method: "DELETE"}}},
			{Provider: v1alpha1.MetricProvider{}},
		}}
		_, err := engine.Prepare(ctx, &spec, nil, nil)
		require.Error(t, err)
		var fields []string
		for _, p := range fielderr.From(err) {
			fields = append(fields, p.Field.Field)
		}
		assert.Equal(t, []string{
			"metrics[2].name",
			"metrics[rate].provider.prometheus.query",
			"metrics[rate].provider.prometheus.query",
			"metrics[rate].interval",
			"metrics[rate].successCondition",
			"metrics[rate].provider.prometheus.timeout",
			"metrics[page].noData",
			"metrics[page].provider.web.url",
			"metrics[page].provider.web.method",
			"metrics[page].provider.web.jsonPath",
			"metrics[2].provider",
		}, fields, err.Error())
		for _, line := range []string{
			`metrics[rate].provider.prometheus.query: argument "a" is not defined`,
			`metrics[rate].provider.prometheus.query: argument "b" is not defined`,
			`metrics[page].provider.web.method: "DELETE" is not GET, POST or PUT`,
			"metrics[2].provider: exactly one provider (prometheus, web, judge or job) must be set",
		} {
			assert.Contains(t, strings.Split(err.Error(), "\n"), line)
		}

		var missing []string
		for _, p := range fielderr.From(err) {
			if undefined, ok := errors.AsType[*metricsq.UndefinedArgError](p); ok {
				missing = append(missing, undefined.Name)
			}
		}
		assert.Equal(t, []string{"a", "b"}, missing, "each missing arg is its own problem, found by type")
	})

	t.Run("an arg whose Secret fails is reported once", func(t *testing.T) {
		spec := metric(func(m *v1alpha1.Metric) {})
		spec.Args = []v1alpha1.Argument{{Name: "svc", ValueFrom: &v1alpha1.ArgumentValueFrom{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "s", Key: "k"}}}}
		_, err := engine.Prepare(ctx, &spec, nil, nil)
		require.EqualError(t, err, "args[svc].valueFrom.secretKeyRef: secrets cannot be read here; pass the value as an argument",
			"not also an undefined argument in the query")
	})

	t.Run("secrets are resolved and masked", func(t *testing.T) {
		spec := metric(func(m *v1alpha1.Metric) {})
		spec.Args = []v1alpha1.Argument{{Name: "svc", ValueFrom: &v1alpha1.ArgumentValueFrom{SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "s", Key: "k"}}}}
		plan, err := engine.Prepare(ctx, &spec, func(_ context.Context, name, key string) (string, error) {
			return "hunter2", nil
		}, nil)
		require.NoError(t, err)
		assert.Equal(t, "failed for ***** at *****", plan.Mask("failed for hunter2 at hunter2"))

		_, err = engine.Prepare(ctx, &spec, func(context.Context, string, string) (string, error) { return "", errors.New("not found") }, nil)
		assert.ErrorContains(t, err, `args[svc].valueFrom.secretKeyRef: reading key "k" of Secret "s": not found`)
	})

	t.Run("templates validate with placeholder args", func(t *testing.T) {
		tmpl := &v1alpha1.AnalysisTemplateSpec{
			Args: []v1alpha1.Argument{{Name: "svc"}, {Name: "window"}},
			Metrics: []v1alpha1.Metric{
				{Name: "ok", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: `rate(x{svc="{{args.svc}}"}[{{args.window}}])`}}},
				{Name: "broken", SuccessCondition: "result[0] >", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "x"}}},
				{Name: "broken-query", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "rate(x[5m]"}}},
			},
		}
		errs, _ := engine.ValidateTemplate(ctx, tmpl)
		require.Len(t, errs, 2)
		assert.Contains(t, errs[0].Error(), "metrics[broken].successCondition")
		assert.Contains(t, errs[1].Error(), "metrics[broken-query].provider.prometheus.query")
	})

	t.Run("templates with auth Secrets validate without reading them", func(t *testing.T) {
		ref := &v1alpha1.SecretKeySelector{Name: "prom", Key: "token"}
		tmpl := &v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{
			{Name: "bearer", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "x",
				Auth: &v1alpha1.HTTPAuth{BearerTokenSecret: ref, TLS: &v1alpha1.TLSConfig{CASecret: ref, CertSecret: ref, KeySecret: ref}}}}},
			{Name: "basic", Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "http://x", JSONPath: "{$.a}",
				Auth: &v1alpha1.HTTPAuth{BasicAuth: &v1alpha1.BasicAuth{Username: "u", PasswordSecret: *ref}}}}},
			{Name: "cert-without-key", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: "x",
				Auth: &v1alpha1.HTTPAuth{TLS: &v1alpha1.TLSConfig{CertSecret: ref}}}}},
		}}
		errs, _ := engine.ValidateTemplate(ctx, tmpl)
		require.Len(t, errs, 1)
		assert.ErrorContains(t, errs[0], "metrics[cert-without-key].provider.prometheus.auth.tls: certSecret and keySecret go together")
		assert.NotNil(t, tmpl.Metrics[0].Provider.Prometheus.Auth.TLS.CASecret, "the template itself is left alone")
	})
}

func mustExecutor(t *testing.T) *shared.Executor {
	t.Helper()
	e, err := shared.NewExecutor(nil, shared.Options{})
	require.NoError(t, err)
	return e
}
