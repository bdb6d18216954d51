package judge_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/judge"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/test/fakeprom"
)

var tick = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// points is what a 5m lookback at a 15s step asks per series.
const points = 21

// latencies are the points of a log-normal latency around median with spread sigma, the
// same for the same seed.
func latencies(seed uint64, median, sigma float64) []float64 {
	return latencySeries(seed, points, median, sigma)
}

func latencySeries(seed uint64, n int, median, sigma float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 14))
	out := make([]float64, n)
	for i := range out {
		out[i] = median * math.Exp(sigma*rng.NormFloat64())
	}
	return out
}

const latencyQuery = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{revision="{{args.hash}}"}[1m])))`

// latency is latencyQuery for one revision, as the fake sees it once rendered.
func latency(hash string) string { return strings.ReplaceAll(latencyQuery, "{{args.hash}}", hash) }

func comparison(name, baseline, canary string) v1alpha1.JudgeComparison {
	return v1alpha1.JudgeComparison{Name: name, Baseline: baseline, Canary: canary, Direction: "increase"}
}

// canaryVsStable compares latencyQuery between the stable-hash and canary-hash args.
func canaryVsStable() v1alpha1.JudgeComparison {
	return comparison("latency",
		strings.ReplaceAll(latencyQuery, "hash", "stable-hash"),
		strings.ReplaceAll(latencyQuery, "hash", "canary-hash"))
}

func judgeSpec(cs ...v1alpha1.JudgeComparison) *v1alpha1.JudgeMetric {
	return &v1alpha1.JudgeMetric{Lookback: "5m", Step: "15s", Metrics: cs}
}

func mustExecutor(t testing.TB) *shared.Executor {
	t.Helper()
	e, err := shared.NewExecutor(nil, shared.Options{})
	require.NoError(t, err)
	return e
}

// runSpec is a run of one judge metric with the revisions' hashes as args.
func runSpec(j *v1alpha1.JudgeMetric, stable, canary string) *v1alpha1.AnalysisRunSpec {
	return &v1alpha1.AnalysisRunSpec{
		Metrics: []v1alpha1.Metric{{Name: "canary-vs-stable", Provider: v1alpha1.MetricProvider{Judge: j}}},
		Args: []v1alpha1.Argument{
			{Name: "stable-hash", Value: ptr.To(stable)},
			{Name: "canary-hash", Value: ptr.To(canary)},
		},
	}
}

// measure takes a run's first measurement at tick as the controller would, through exec,
// and returns it with the metric's status.
func measure(t *testing.T, exec *shared.Executor, prom *fakeprom.Server, spec *v1alpha1.AnalysisRunSpec) (v1alpha1.Measurement, metricsq.Result) {
	t.Helper()
	plan, err := analysis.NewEngine(exec, prom.URL, analysis.Cluster{}).Prepare(context.Background(), spec, nil, nil)
	require.NoError(t, err)
	var st v1alpha1.AnalysisRunStatus
	taken, _ := plan.Step(context.Background(), &st, tick, false)
	require.Len(t, taken, 1)
	return taken[0].Measurement, taken[0].Result
}

func TestVerdicts(t *testing.T) {
	noisy, steady := latencies(1, 0.1, 0.1), latencies(1, 0.1, 0.01)
	allow := func(c *v1alpha1.JudgeComparison) { c.AllowedIncrease = ptr.To(1.2) }
	either := func(c *v1alpha1.JudgeComparison) { c.Direction = "either" }
	for _, tc := range []struct {
		name           string
		stable, canary []float64
		mut            func(*v1alpha1.JudgeComparison)
		phase          v1alpha1.AnalysisPhase
		score          float64
		value          []string
	}{
		{"twice the latency fails", noisy, latencies(2, 0.2, 0.1), nil, v1alpha1.AnalysisPhaseFailed, 0,
			[]string{"score 0 (Fail); latency: High, shift [0.", "medians canary 0.1971 baseline 0.1028", "mean ratio 2.046"}},
		{"the same distribution passes", noisy, latencies(2, 0.1, 0.1), nil, v1alpha1.AnalysisPhaseSuccessful, 100,
			[]string{"score 100 (Pass); latency: Pass, shift [-0.0", "medians canary 0.09", "baseline 0.1"}},
		{"5% higher is High without an allowance", steady, latencies(2, 0.105, 0.01), nil, v1alpha1.AnalysisPhaseFailed, 0,
			[]string{"latency: High", "mean ratio 1.05"}},
		{"5% higher passes with allowedIncrease 1.2", steady, latencies(2, 0.105, 0.01), allow, v1alpha1.AnalysisPhaseSuccessful, 100,
			[]string{"latency: Pass", "mean ratio 1.05"}},
		{"faster is no failure when only an increase fails", noisy, latencies(2, 0.05, 0.1), nil, v1alpha1.AnalysisPhaseSuccessful, 100,
			[]string{"latency: Pass"}},
		{"faster fails when either direction does", noisy, latencies(2, 0.05, 0.1), either, v1alpha1.AnalysisPhaseFailed, 0,
			[]string{"latency: Low"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom := fakeprom.New(t)
			prom.Set(latency("s1"), fakeprom.Series{Values: tc.stable})
			prom.Set(latency("c1"), fakeprom.Series{Values: tc.canary})
			c := canaryVsStable()
			if tc.mut != nil {
				tc.mut(&c)
			}
			m, res := measure(t, mustExecutor(t), prom, runSpec(judgeSpec(c), "s1", "c1"))
			assert.Equal(t, tc.phase, m.Phase, "%s: %s", m.Value, m.Message)
			require.Len(t, res.Values, 1)
			assert.Equal(t, tc.score, res.Values[0], "the result is the score")
			for _, v := range tc.value {
				assert.Contains(t, m.Value, v)
			}
			assert.Equal(t, 1, prom.Requests(latency("s1")))
			assert.Equal(t, 1, prom.Requests(latency("c1")))
		})
	}
}

func TestMarginalIsInconclusive(t *testing.T) {
	prom := fakeprom.New(t)
	var cs []v1alpha1.JudgeComparison
	for i, name := range []string{"a", "b", "c", "d"} {
		canary := latencies(uint64(10+i), 0.1, 0.1)
		if name == "d" {
			canary = latencies(20, 0.3, 0.1)
		}
		prom.Set("base_"+name, fakeprom.Series{Values: latencies(uint64(i), 0.1, 0.1)})
		prom.Set("canary_"+name, fakeprom.Series{Values: canary})
		cs = append(cs, comparison(name, "base_"+name, "canary_"+name))
	}
	m, _ := measure(t, mustExecutor(t), prom, runSpec(judgeSpec(cs...), "s", "c"))
	assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, m.Phase, m.Value)
	assert.Equal(t, "score 75 is marginal: at least 75, below the pass threshold 95", m.Message)
	assert.True(t, strings.HasPrefix(m.Value, "score 75 (Marginal); a: Pass, shift ["), m.Value)
	assert.Contains(t, m.Value, "; d: High, shift [0.1854, 0.2226], medians canary 0.3007 baseline 0.1009, mean ratio 3.082")
}

func TestNoCanaryDataIsInconclusive(t *testing.T) {
	prom := fakeprom.New(t)
	prom.Set(latency("s1"), fakeprom.Series{Values: latencies(1, 0.1, 0.1)})
	spec := runSpec(judgeSpec(canaryVsStable()), "s1", "c1")
	m, res := measure(t, mustExecutor(t), prom, spec)
	assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, m.Phase)
	assert.True(t, res.NoData)
	assert.Equal(t, "no data; latency: NoData, no canary data (21 points, 21 NaN)", m.Value)
	assert.Equal(t, "no data (no scored comparison has data on both sides): counted as Inconclusive by noData", m.Message)

	// Evaluate hands it to the score, which is 0 with no data: still never Successful.
	spec.Metrics[0].NoData = v1alpha1.NoDataEvaluate
	m, _ = measure(t, mustExecutor(t), prom, spec)
	assert.Equal(t, v1alpha1.AnalysisPhaseFailed, m.Phase)
	assert.Equal(t, "no scored comparison has data on both sides", m.Message)

	t.Run("half the comparisons without data fail", func(t *testing.T) {
		prom.Set("errors_stable", fakeprom.Series{Values: latencies(3, 0.01, 0.1)})
		prom.Set("errors_canary", fakeprom.Series{Values: latencies(4, 0.01, 0.1)})
		spec := runSpec(judgeSpec(canaryVsStable(), comparison("errors", "errors_stable", "errors_canary")), "s1", "c1")
		m, _ := measure(t, mustExecutor(t), prom, spec)
		assert.Equal(t, v1alpha1.AnalysisPhaseFailed, m.Phase)
		assert.Equal(t, "no data in 1 of 2 scored comparisons, half or more: score 0", m.Message)
	})

	t.Run("gaps count as NaN", func(t *testing.T) {
		prom := fakeprom.New(t)
		prom.Set(latency("s1"), fakeprom.Series{Values: latencies(1, 0.1, 0.1)})
		prom.Set(latency("c1"), fakeprom.Series{Values: latencies(2, 0.1, 0.1)[:5]})
		c := canaryVsStable()
		c.NaNStrategy = "replace"
		m, _ := measure(t, mustExecutor(t), prom, runSpec(judgeSpec(c), "s1", "c1"))
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, m.Phase, "16 missing steps are 0 with replace, lower than the baseline, and only an increase fails: %s", m.Value)
		assert.Contains(t, m.Value, "medians canary 0 baseline 0.1")
	})
}

func TestCriticalFailureZeroesTheScore(t *testing.T) {
	prom := fakeprom.New(t)
	prom.Set(latency("s1"), fakeprom.Series{Values: latencies(1, 0.1, 0.1)})
	prom.Set(latency("c1"), fakeprom.Series{Values: latencies(2, 0.2, 0.1)})
	prom.Set("errors_stable", fakeprom.Series{Values: latencies(3, 0.01, 0.1)})
	prom.Set("errors_canary", fakeprom.Series{Values: latencies(4, 0.01, 0.1)})
	j := judgeSpec(canaryVsStable(), comparison("errors", "errors_stable", "errors_canary"))
	j.Thresholds = &v1alpha1.JudgeThresholds{Pass: 50, Marginal: 25}

	m, res := measure(t, mustExecutor(t), prom, runSpec(j, "s1", "c1"))
	assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, m.Phase, "one of two fails: 50 reaches pass 50")
	assert.Equal(t, []float64{50}, res.Values)

	j.Metrics[0].Critical = true
	m, res = measure(t, mustExecutor(t), prom, runSpec(j, "s1", "c1"))
	assert.Equal(t, v1alpha1.AnalysisPhaseFailed, m.Phase)
	assert.Equal(t, []float64{0}, res.Values)
	assert.Equal(t, "critical failure of latency (High): score 0", m.Message)
	assert.Contains(t, m.Value, "score 0 (Fail); latency: High (critical failure), shift")
	assert.Contains(t, m.Value, "; errors: Pass")
}

func TestLabelSetsAreAligned(t *testing.T) {
	prom := fakeprom.New(t)
	route := func(r string, v []float64) fakeprom.Series {
		return fakeprom.Series{Labels: map[string]string{"route": r}, Values: v}
	}
	prom.Set("by_route_stable", route("/b", latencies(1, 0.1, 0.1)), route("/a", latencies(2, 0.1, 0.1)))
	prom.Set("by_route_canary", route("/b", latencies(3, 0.3, 0.1)), route("/c", latencies(4, 0.1, 0.1)), route("/a", latencies(5, 0.1, 0.1)))
	m, _ := measure(t, mustExecutor(t), prom, runSpec(judgeSpec(comparison("latency", "by_route_stable", "by_route_canary")), "s", "c"))
	assert.Equal(t, v1alpha1.AnalysisPhaseFailed, m.Phase)
	assert.Equal(t, "score 50 is below the marginal threshold 75", m.Message, "/c has no baseline and is left out of the score")
	entries := strings.Split(m.Value, "; ")
	require.Len(t, entries, 4, m.Value)
	assert.Equal(t, "score 50 (Fail)", entries[0])
	assert.True(t, strings.HasPrefix(entries[1], `latency{route="/b"}: High, shift [`), "paired by label, not by position: %s", entries[1])
	assert.Equal(t, `latency{route="/c"}: NoData, no baseline data (21 points, 21 NaN)`, entries[2])
	assert.True(t, strings.HasPrefix(entries[3], `latency{route="/a"}: Pass, shift [`), entries[3])
}

func TestValueIsBounded(t *testing.T) {
	prom := fakeprom.New(t)
	var stable, canary []fakeprom.Series
	for i := range 30 {
		labels := map[string]string{"pod": strings.Repeat("p", 100) + string(rune('A'+i))}
		stable = append(stable, fakeprom.Series{Labels: labels, Values: latencies(uint64(i), 0.1, 0.1)})
		c := latencies(uint64(100+i), 0.1, 0.1)
		if i < 2 {
			c = latencies(uint64(100+i), 0.5, 0.1)
		}
		canary = append(canary, fakeprom.Series{Labels: labels, Values: c})
	}
	prom.Set("pods_stable", stable...)
	prom.Set("pods_canary", canary...)
	prom.Set("errors_stable", fakeprom.Series{Values: latencies(3, 0.01, 0.1)})
	prom.Set("errors_canary", fakeprom.Series{Values: latencies(4, 0.01, 0.1)})
	j := judgeSpec(comparison("latency", "pods_stable", "pods_canary"), comparison("errors", "errors_stable", "errors_canary"))
	m, _ := measure(t, mustExecutor(t), prom, runSpec(j, "s", "c"))
	entries := strings.Split(m.Value, "; ")
	require.Len(t, entries, 1+5+1+1, m.Value)
	for _, e := range entries[1:3] {
		assert.Contains(t, e, ": High", "what failed is shown first")
	}
	assert.Contains(t, entries[1], "pppp…: High", "long label sets are cut")
	assert.Equal(t, "latency: 25 comparisons not shown (25 Pass)", entries[6])
	assert.True(t, strings.HasPrefix(entries[7], "errors: Pass"), "every metric is shown")
	assert.Less(t, len(m.Value), 2000)
}

// TestBaselineQueriesAreShared: two runs judging different canaries against the same
// stable revision at one tick ask the baseline once.
func TestBaselineQueriesAreShared(t *testing.T) {
	prom := fakeprom.New(t)
	prom.Set(latency("s1"), fakeprom.Series{Values: latencies(1, 0.1, 0.1)})
	prom.Set(latency("c1"), fakeprom.Series{Values: latencies(2, 0.1, 0.1)})
	prom.Set(latency("c2"), fakeprom.Series{Values: latencies(3, 0.2, 0.1)})
	exec := mustExecutor(t)
	first, _ := measure(t, exec, prom, runSpec(judgeSpec(canaryVsStable()), "s1", "c1"))
	second, _ := measure(t, exec, prom, runSpec(judgeSpec(canaryVsStable()), "s1", "c2"))
	assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, first.Phase)
	assert.Equal(t, v1alpha1.AnalysisPhaseFailed, second.Phase)
	assert.Equal(t, 1, prom.Requests(latency("s1")), "the baseline is asked once for both runs")
	assert.Equal(t, 1, prom.Requests(latency("c1")))
	assert.Equal(t, 1, prom.Requests(latency("c2")))

	again, _ := measure(t, exec, prom, runSpec(judgeSpec(canaryVsStable()), "s1", "c1"))
	assert.Equal(t, first.Value, again.Value, "an identical judge at the same tick shares the whole judgement")
	assert.Equal(t, 3, prom.Total())
}

func TestQueryErrorIsAnError(t *testing.T) {
	prom := fakeprom.New(t)
	prom.Set(latency("s1"), fakeprom.Series{Values: latencies(1, 0.1, 0.1)})
	prom.Fail(latency("c1"), "too many samples")
	m, _ := measure(t, mustExecutor(t), prom, runSpec(judgeSpec(canaryVsStable()), "s1", "c1"))
	assert.Equal(t, v1alpha1.AnalysisPhaseError, m.Phase)
	assert.Contains(t, m.Message, "querying judge of "+prom.URL+": latency canary: querying "+prom.URL+": bad_data: too many samples")
}

func TestValidation(t *testing.T) {
	engine := analysis.NewEngine(mustExecutor(t), "http://prometheus:9090", analysis.Cluster{})
	problems := func(t *testing.T, m v1alpha1.Metric) []string {
		t.Helper()
		spec := &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}, Args: []v1alpha1.Argument{{Name: "stable-hash", Value: ptr.To("s1")}}}
		_, err := engine.Prepare(context.Background(), spec, nil, nil)
		require.Error(t, err)
		var fe *field.Error
		require.ErrorAs(t, err, &fe, "every problem is a field error")
		var lines []string
		for _, p := range fielderr.From(err) {
			lines = append(lines, p.Error())
		}
		return lines
	}

	t.Run("every problem names its field", func(t *testing.T) {
		j := &v1alpha1.JudgeMetric{
			Prometheus: &v1alpha1.JudgePrometheus{Timeout: "soon"},
			Step:       "1ms",
			Thresholds: &v1alpha1.JudgeThresholds{Pass: 70, Marginal: 80},
			Metrics: []v1alpha1.JudgeComparison{
				{Name: "latency", Baseline: "rate(x[5m]", Canary: strings.ReplaceAll(latencyQuery, "hash", "canary-hash"), Direction: "up",
					EffectSize: "cles", AllowedIncrease: ptr.To(1.2), CriticalDecrease: ptr.To(-1.0), NaNStrategy: "zero", Weight: ptr.To(60.0)},
				{Name: "errors", Baseline: "up", Canary: "up", Weight: ptr.To(40.0)},
				{Name: "errors", Canary: "up", Outliers: "drop", OutlierFactor: ptr.To(-1.0), EffectSize: "ratio"},
			},
		}
		got := problems(t, v1alpha1.Metric{Name: "judge", SuccessCondition: "result >= 95", Provider: v1alpha1.MetricProvider{Judge: j}})
		assert.Equal(t, []string{
			// Args are rendered into the whole metric before anything else is checked.
			`metrics[judge].provider.judge.metrics[latency].canary: argument "canary-hash" is not defined`,
			"metrics[judge].successCondition: a judge metric is decided by its provider itself; a condition could only contradict it",
			`metrics[judge].provider.judge.prometheus.timeout: invalid duration "soon": time: invalid duration "soon"`,
			"metrics[judge].provider.judge.lookback: a positive duration is required",
			"metrics[judge].provider.judge.thresholds: invalid scoring input: thresholds pass 70 and marginal 80 are not 0 <= marginal <= pass <= 100",
			"metrics[judge].provider.judge.metrics[latency].baseline: invalid PromQL: 1:11: parse error: unclosed left parenthesis",
			`metrics[judge].provider.judge.metrics[latency].direction: invalid judge settings: direction "up" is not increase, decrease or either`,
			`metrics[judge].provider.judge.metrics[latency].nanStrategy: invalid judge settings: NaN strategy "zero" is not remove or replace`,
			"metrics[judge].provider.judge.metrics[latency].allowedIncrease: invalid judge settings: allowedIncrease 1.2 is not a finite number in [0, 1] for cles",
			"metrics[judge].provider.judge.metrics[latency].criticalDecrease: invalid judge settings: criticalDecrease -1 is not a finite number in [0, 1] for cles",
			`metrics[judge].provider.judge.metrics[errors].weight: group "" already has weight 60 from metrics[latency]`,
			`metrics[judge].provider.judge.metrics[errors].name: duplicate comparison name "errors"`,
			"metrics[judge].provider.judge.metrics[errors].baseline: a PromQL query is required",
			`metrics[judge].provider.judge.metrics[errors].outliers: invalid judge settings: outlier strategy "drop" is not keep or remove`,
			"metrics[judge].provider.judge.metrics[errors].outlierFactor: invalid judge settings: outlier factor -1 is not a finite number >= 0",
			`metrics[judge].provider.judge.metrics[errors].effectSize: invalid judge settings: effect size "ratio" is not meanRatio or cles`,
		}, got)
	})

	// An infinite number comes from no YAML, only from Go; args cannot be rendered into a
	// metric that holds one, which is checked as written.
	t.Run("infinite settings", func(t *testing.T) {
		j := judgeSpec(canaryVsStable())
		j.Metrics[0].AllowedDecrease = ptr.To(math.Inf(1))
		got := problems(t, v1alpha1.Metric{Name: "judge", Provider: v1alpha1.MetricProvider{Judge: j}})
		assert.Contains(t, got, "metrics[judge]: args cannot be rendered into a metric that cannot be encoded: json: unsupported value: +Inf")
		assert.Contains(t, got, "metrics[judge].provider.judge.metrics["+j.Metrics[0].Name+"].allowedDecrease: invalid judge settings: allowedDecrease +Inf is not a finite number in [-Inf, +Inf] for meanRatio")
	})

	t.Run("durations, thresholds and scoring", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			mut  func(*v1alpha1.JudgeMetric)
			want string
		}{
			{"step over lookback", func(j *v1alpha1.JudgeMetric) { j.Step = "10m" },
				"metrics[judge].provider.judge.step: step 10m0s exceeds lookback 5m0s: each side would have one point"},
			{"too many points", func(j *v1alpha1.JudgeMetric) { j.Step = "10ms" },
				"metrics[judge].provider.judge.step: lookback 5m0s at step 10ms is over 11000 points per series, more than Prometheus answers"},
			{"zero step", func(j *v1alpha1.JudgeMetric) { j.Step = "0s" }, "metrics[judge].provider.judge.step: a positive duration is required"},
			{"pass 0", func(j *v1alpha1.JudgeMetric) { j.Thresholds = &v1alpha1.JudgeThresholds{} },
				"metrics[judge].provider.judge.thresholds.pass: a pass threshold of 0 or below would pass any score; it must be above 0"},
			{"all muted", func(j *v1alpha1.JudgeMetric) { j.Metrics[0].Muted = true },
				"metrics[judge].provider.judge.metrics: every comparison is muted: nothing would be scored, and a measurement with nothing to score fails"},
			{"weights of nothing", func(j *v1alpha1.JudgeMetric) { j.Metrics[0].Weight = ptr.To(0.0) },
				"metrics[judge].provider.judge.metrics: invalid scoring input: the weights of the scored groups add up to 0"},
			{"no comparison", func(j *v1alpha1.JudgeMetric) { j.Metrics = nil },
				"metrics[judge].provider.judge.metrics: at least one comparison is required"},
			{"no name", func(j *v1alpha1.JudgeMetric) { j.Metrics[0].Name = "" },
				"metrics[judge].provider.judge.metrics[0].name: a name is required"},
			{"no address", func(j *v1alpha1.JudgeMetric) { j.Prometheus = &v1alpha1.JudgePrometheus{Address: "ftp://prom"} },
				`metrics[judge].provider.judge.prometheus: prometheus provider: address "ftp://prom" is not an http(s) URL`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				j := judgeSpec(comparison("latency", "up", "up"))
				tc.mut(j)
				assert.Equal(t, []string{tc.want}, problems(t, v1alpha1.Metric{Name: "judge", Provider: v1alpha1.MetricProvider{Judge: j}}))
			})
		}
	})

	t.Run("templates check with placeholders and no address", func(t *testing.T) {
		engine := analysis.NewEngine(mustExecutor(t), "", analysis.Cluster{})
		tmpl := &v1alpha1.AnalysisTemplateSpec{
			Args:    []v1alpha1.Argument{{Name: "stable-hash"}, {Name: "canary-hash"}},
			Metrics: []v1alpha1.Metric{{Name: "judge", Provider: v1alpha1.MetricProvider{Judge: judgeSpec(canaryVsStable())}}},
		}
		problems, warnings := engine.ValidateTemplate(context.Background(), tmpl)
		assert.Empty(t, problems)
		assert.Empty(t, warnings)
		tmpl.Metrics[0].FailureCondition = "result < 50"
		errs, _ := engine.ValidateTemplate(context.Background(), tmpl)
		require.Len(t, errs, 1)
		assert.Equal(t, "metrics[judge].failureCondition", errs[0].Field.Field)
	})

	t.Run("what only admission checks", func(t *testing.T) {
		j := judgeSpec(comparison(strings.Repeat("x", 64), "up", "up"))
		for i := range 20 {
			j.Metrics = append(j.Metrics, comparison(string(rune('a'+i)), "up", "up"))
		}
		j.Prometheus = &v1alpha1.JudgePrometheus{Auth: &v1alpha1.HTTPAuth{BearerTokenSecret: &v1alpha1.SecretKeySelector{Name: "s"}}}
		var got []string
		for _, e := range analysis.CheckProvider(field.NewPath("provider"), &v1alpha1.MetricProvider{Judge: j}) {
			got = append(got, e.Error())
		}
		assert.Equal(t, []string{
			"provider.judge.prometheus.auth.bearerTokenSecret.key: Required value: is required",
			"provider.judge.metrics: Too many: 21: must have at most 20 items",
			"provider.judge.metrics[" + strings.Repeat("x", 64) + "].name: Too long: may not be more than 63 bytes",
		}, got)
	})

	t.Run("a factory with no executor only checks", func(t *testing.T) {
		f := judge.NewFactory(judge.Options{})
		_, errs := f.Build(context.Background(), field.NewPath("provider"), &v1alpha1.MetricProvider{Judge: judgeSpec(comparison("a", "up", "up"))}, providers.Env{})
		require.Len(t, errs, 1)
		assert.Equal(t, field.ErrorTypeInternal, errs[0].Field.Type)
	})
}

// Queries whose sides keep the label that tells them apart never pair: the message says
// so, instead of only that there is no data.
func TestUnpairedSidesAreNamed(t *testing.T) {
	prom := fakeprom.New(t)
	rev := func(r string, v []float64) fakeprom.Series {
		return fakeprom.Series{Labels: map[string]string{"revision": r}, Values: v}
	}
	prom.Set("raw_stable", rev("s", latencies(1, 0.1, 0.1)))
	prom.Set("raw_canary", rev("c", latencies(2, 0.1, 0.1)))
	m, _ := measure(t, mustExecutor(t), prom, runSpec(judgeSpec(comparison("latency", "raw_stable", "raw_canary")), "s", "c"))
	assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, m.Phase)
	assert.Contains(t, m.Message, `the baseline's and the canary's series of latency share no label set`)

	prom.Set("raw_canary")
	m, _ = measure(t, mustExecutor(t), prom, runSpec(judgeSpec(comparison("latency", "raw_stable", "raw_canary")), "s", "c"))
	assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, m.Phase)
	assert.NotContains(t, m.Message, "share no label set", "a canary with no series at all is no data, not a query mistake")
}
