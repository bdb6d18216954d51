package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// m is a scored metric's result as Score reads it.
func m(name, group string, c Classification) MetricResult {
	return MetricResult{Name: name, Group: group, Result: Result{Classification: c}}
}

func critical(mr MetricResult) MetricResult {
	mr.Result.CriticalFailure = true
	return mr
}

func mustHaveData(mr MetricResult) MetricResult {
	mr.Result.MustHaveData = true
	return mr
}

func muted(mr MetricResult) MetricResult {
	mr.Muted = true
	return mr
}

func TestScore(t *testing.T) {
	tests := []struct {
		name       string
		results    []MetricResult
		weights    map[string]float64
		thresholds Thresholds
		score      float64
		verdict    Verdict
		reason     string
	}{
		{"all pass", []MetricResult{m("a", "", Pass), m("b", "", Pass)}, nil, Thresholds{}, 100, VerdictPass,
			"score 100.00 from ungrouped 100.00 x 100%: Pass (pass 95, marginal 75)"},
		{"one high of four is marginal", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", Pass), m("d", "", High)}, nil, Thresholds{}, 75, VerdictMarginal, "Marginal"},
		{"one low of three fails, rounded", []MetricResult{m("a", "", Pass), m("b", "", Low), m("c", "", Pass)}, nil, Thresholds{}, 66.67, VerdictFail, "score 66.67"},
		{"two of three rounds up", []MetricResult{m("a", "", High), m("b", "", Low), m("c", "", Pass)}, nil, Thresholds{}, 33.33, VerdictFail, "33.33"},
		{"error is not counted", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", Error)}, nil, Thresholds{}, 100, VerdictPass, "100.00"},
		{"NoData is not counted", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", NoData)}, nil, Thresholds{}, 100, VerdictPass, "100.00"},
		{"NoData that must have data fails", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", Pass), mustHaveData(m("d", "", NoData))}, nil, Thresholds{}, 75, VerdictMarginal, "75.00"},
		{"a group of only errors counts 100", []MetricResult{m("a", "g1", Pass), m("b", "g1", High), m("c", "g2", Error)}, nil, Thresholds{}, 75, VerdictMarginal,
			"g1 50.00 x 50%, g2 100.00 x 50%"},

		// Overrides.
		{"critical failure", []MetricResult{m("a", "", Pass), m("b", "", Pass), critical(m("lat", "", High))}, nil, Thresholds{}, 0, VerdictFail, "critical failure: lat (High)"},
		{"critical NoData and Error", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", Pass), critical(m("x", "", NoData)), critical(m("y", "", Error))}, nil, Thresholds{}, 0, VerdictFail, "critical failure: x (NoData), y (Error)"},
		{"critical failure even when the rest would pass a low bar", []MetricResult{m("a", "", Pass), critical(m("b", "", High))}, nil, Thresholds{Pass: 10, Marginal: 0}, 0, VerdictFail, "critical failure"},
		{"half NoData", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", NoData), m("d", "", NoData)}, nil, Thresholds{}, 0, VerdictFail, "no data in 2 of 4 scored metrics, half or more"},
		{"under half NoData", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", NoData)}, nil, Thresholds{}, 100, VerdictPass, "100.00"},
		{"no metrics", nil, nil, Thresholds{}, 0, VerdictFail, "no metric to score"},

		// Muted.
		{"muted high is not scored", []MetricResult{m("a", "", Pass), muted(m("noisy", "", High))}, nil, Thresholds{}, 100, VerdictPass, "; muted, not scored: noisy (High)"},
		{"muted critical failure is not scored", []MetricResult{m("a", "", Pass), muted(critical(m("x", "", High)))}, nil, Thresholds{}, 100, VerdictPass, "muted, not scored: x (High)"},
		{"muted NoData does not count to half", []MetricResult{m("a", "", Pass), muted(m("x", "", NoData)), muted(m("y", "", NoData))}, nil, Thresholds{}, 100, VerdictPass, "x (NoData), y (NoData)"},
		{"only muted", []MetricResult{muted(m("x", "", Pass))}, nil, Thresholds{}, 0, VerdictFail, "no metric to score; muted, not scored: x (Pass)"},
		{"muted group has no weight", []MetricResult{m("a", "g1", Pass), muted(m("b", "g2", High))}, map[string]float64{"g2": 90}, Thresholds{}, 100, VerdictPass, "g1 100.00 x 100%"},

		// Weights.
		{"unweighted groups are equal", []MetricResult{m("a", "g1", Pass), m("b", "g2", High), m("c", "g3", Pass)}, nil, Thresholds{}, 66.67, VerdictFail,
			"g1 100.00 x 33.33%, g2 0.00 x 33.33%, g3 100.00 x 33.33%"},
		{"weighted", []MetricResult{m("e1", "errors", Pass), m("e2", "errors", Pass), m("l1", "latency", Pass), m("l2", "latency", High)}, map[string]float64{"errors": 75}, Thresholds{}, 87.5, VerdictMarginal,
			"errors 100.00 x 75%, latency 50.00 x 25%"},
		{"unweighted groups share the rest", []MetricResult{m("a", "a", Pass), m("b", "b", High), m("c1", "c", Pass), m("c2", "c", Low)}, map[string]float64{"a": 50}, Thresholds{}, 62.5, VerdictFail,
			"a 100.00 x 50%, b 0.00 x 25%, c 50.00 x 25%"},
		{"weights over 100 are normalised", []MetricResult{m("a", "a", Pass), m("b", "b", High)}, map[string]float64{"a": 100, "b": 100}, Thresholds{}, 50, VerdictFail, "a 100.00 x 50%, b 0.00 x 50%"},
		{"weights that use up 100 leave nothing", []MetricResult{m("a", "a", Pass), m("b", "b", High)}, map[string]float64{"a": 100}, Thresholds{}, 100, VerdictPass, "b 0.00 x 0%"},
		{"weights of absent groups are ignored", []MetricResult{m("a", "a", Pass), m("b", "b", High)}, map[string]float64{"a": 60, "z": 40}, Thresholds{}, 60, VerdictFail, "a 100.00 x 60%, b 0.00 x 40%"},
		{"a zero weight silences a group", []MetricResult{m("a", "a", Pass), m("b", "b", High)}, map[string]float64{"b": 0}, Thresholds{}, 100, VerdictPass, "b 0.00 x 0%"},

		// Thresholds.
		{"exactly the pass threshold", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", Pass), m("d", "", High)}, nil, Thresholds{Pass: 75, Marginal: 50}, 75, VerdictPass, "Pass (pass 75, marginal 50)"},
		{"between thresholds", []MetricResult{m("a", "", Pass), m("b", "", High)}, nil, Thresholds{Pass: 75, Marginal: 50}, 50, VerdictMarginal, "Marginal"},
		{"below marginal", []MetricResult{m("a", "", Pass), m("b", "", High), m("c", "", High)}, nil, Thresholds{Pass: 75, Marginal: 50}, 33.33, VerdictFail, "Fail"},
		{"the rounded score is judged", []MetricResult{m("a", "", Pass), m("b", "", Pass), m("c", "", High)}, nil, Thresholds{Pass: 66.67, Marginal: 10}, 66.67, VerdictPass, "Pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Score(tt.results, tt.weights, tt.thresholds)
			require.NoError(t, err)
			assert.Equal(t, tt.score, s.Score, s.Reason)
			assert.Equal(t, tt.verdict, s.Verdict, s.Reason)
			assert.Contains(t, s.Reason, tt.reason)
		})
	}
}

func TestScoreSummaryParts(t *testing.T) {
	s, err := Score([]MetricResult{
		m("e1", "errors", Pass),
		critical(m("e2", "errors", High)),
		mustHaveData(m("l1", "latency", NoData)),
		m("l2", "latency", Error),
		m("l3", "latency", Low),
		muted(m("cpu", "saturation", High)),
	}, map[string]float64{"errors": 40}, Thresholds{})
	require.NoError(t, err)
	assert.Equal(t, []GroupScore{
		{Name: "errors", Weight: 40, Score: 50, Pass: 1, High: 1},
		{Name: "latency", Weight: 60, Score: 0, Low: 1, NoData: 1, FailingNoData: 1, Error: 1},
	}, s.Groups)
	assert.Equal(t, []string{"e2 (High)"}, s.CriticalFailures)
	assert.Equal(t, []string{"cpu (High)"}, s.Muted)
	assert.Equal(t, 0.0, s.Score)
	assert.Equal(t, VerdictFail, s.Verdict)
}

func TestScoreRejects(t *testing.T) {
	ok := []MetricResult{m("a", "g", Pass)}
	tests := []struct {
		name       string
		results    []MetricResult
		weights    map[string]float64
		thresholds Thresholds
		mention    string
	}{
		{"negative weight", ok, map[string]float64{"g": -1}, Thresholds{}, `weight -1 of group "g"`},
		{"NaN weight", ok, map[string]float64{"g": math.NaN()}, Thresholds{}, "weight NaN"},
		{"weight over 100", ok, map[string]float64{"g": 101}, Thresholds{}, "weight 101"},
		{"weights add up to 0", []MetricResult{m("a", "g", Pass), m("b", "h", Pass)}, map[string]float64{"g": 0, "h": 0}, Thresholds{}, "add up to 0"},
		{"marginal above pass", ok, nil, Thresholds{Pass: 50, Marginal: 60}, "pass 50 and marginal 60"},
		{"pass above 100", ok, nil, Thresholds{Pass: 120, Marginal: 60}, "pass 120"},
		{"negative marginal", ok, nil, Thresholds{Pass: 50, Marginal: -1}, "marginal -1"},
		{"NaN threshold", ok, nil, Thresholds{Pass: math.NaN(), Marginal: 1}, "pass NaN"},
		{"unknown classification", []MetricResult{m("a", "g", "Maybe")}, nil, Thresholds{}, `metric "a" has classification "Maybe"`},
		{"unknown classification, muted", []MetricResult{muted(m("a", "g", ""))}, nil, Thresholds{}, `classification ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Score(tt.results, tt.weights, tt.thresholds)
			assert.ErrorIs(t, err, ErrInvalidScoring)
			assert.ErrorContains(t, err, tt.mention)
		})
	}
}

// Classify and Score together, the way the provider will use them.
func TestScoreOfClassifiedMetrics(t *testing.T) {
	base := series(100, 30)
	s, err := Score([]MetricResult{
		{Name: "errors", Group: "errors", Result: Classify(base, base, Settings{Critical: true})},
		{Name: "latency", Group: "latency", Result: Classify(base, plus(base, 20), Settings{Direction: DirectionIncrease})},
		{Name: "throughput", Group: "latency", Result: Classify(base, plus(base, 20), Settings{Direction: DirectionDecrease})},
		{Name: "cache", Group: "latency", Result: Classify(base, nil, Settings{})},
	}, map[string]float64{"errors": 50}, Thresholds{})
	require.NoError(t, err)
	assert.Equal(t, 75.0, s.Score, s.Reason)
	assert.Equal(t, VerdictMarginal, s.Verdict)
}
