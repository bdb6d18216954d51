package analysis

import (
	"math"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
)

func vector(vals ...float64) metricsq.Result {
	r := metricsq.Result{Type: model.ValVector, Values: vals}
	for _, v := range vals {
		r.Series = append(r.Series, metricsq.Sample{Labels: map[string]string{"pod": "p"}, Value: v})
	}
	return r
}

func TestConditions(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		vals    []float64
		want    bool
		wantErr string
	}{
		{"argo vector index", "result[0] >= 0.95", []float64{0.97}, true, ""},
		{"argo vector index false", "result[0] >= 0.95", []float64{0.9}, false, ""},
		{"value single", "value < 0.05", []float64{0.01}, true, ""},
		{"value ambiguous", "value < 0.05", []float64{0.01, 0.02}, false, "exactly one series"},
		{"value on empty", "value < 0.05", nil, false, "exactly one series"},
		{"all series", "all(series, .value < 0.05)", []float64{0.01, 0.02}, true, ""},
		{"labels", `series[0].labels.pod == "p"`, []float64{1}, true, ""},
		{"isNaN", "isNaN(result[0])", []float64{math.NaN()}, true, ""},
		{"isInf", "isInf(result[0])", []float64{math.Inf(1)}, true, ""},
		{"default on empty", "default(result[0], 0) == 0", nil, true, ""},
		{"default on NaN", "default(result[0], 1.5) == 1.5", []float64{math.NaN()}, true, ""},
		{"default keeps value", "default(result[0], 0) == 3", []float64{3}, true, ""},
		{"index out of range", "result[1] > 0", []float64{1}, false, "index out of range"},
		{"asInt", "asInt(result[0]) == 3", []float64{3.7}, true, ""},
		{"asFloat", `asFloat("0.5") == 0.5`, []float64{1}, true, ""},
		{"len", "len(result) == 2", []float64{1, 2}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CompileCondition(tc.src)
			require.NoError(t, err)
			got, err := c.Eval(vector(tc.vals...))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestConditionsRejectedAtCompile(t *testing.T) {
	for _, src := range []string{"result[0] +", "result[0] + 1", `"yes"`, "nosuchvar > 1", "isNaN(\"x\")"} {
		_, err := CompileCondition(src)
		assert.Error(t, err, src)
	}
}

func TestScalarResult(t *testing.T) {
	c, err := CompileCondition("result > 0.5")
	require.NoError(t, err)
	ok, err := c.Eval(metricsq.Result{Type: model.ValScalar, Values: []float64{0.7}, Series: []metricsq.Sample{{Value: 0.7}}})
	require.NoError(t, err)
	assert.True(t, ok)

	_, err = c.Eval(vector(0.7))
	require.ErrorContains(t, err, "on a vector result", "a scalar-only condition on a vector is an error, not a guess")
}

func BenchmarkConditionEval(b *testing.B) {
	for _, src := range []string{"result[0] >= 0.95", "result[0] >= 0.95 && all(series, .value > 0)"} {
		b.Run(src, func(b *testing.B) {
			c, err := CompileCondition(src)
			require.NoError(b, err)
			in := vector(0.97, 0.99)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Eval(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEvalRecoversItsOwnPanics: expr's machine turns panics into errors itself; one that
// escapes it (here, from a broken machine pool) must still be a named error, not a crash.
func TestEvalRecoversItsOwnPanics(t *testing.T) {
	c, err := CompileCondition("result[0] > 0")
	require.NoError(t, err)
	c.vms = sync.Pool{New: func() any { return "not a machine" }}
	ok, err := c.Eval(vector(1))
	assert.False(t, ok)
	require.ErrorContains(t, err, `evaluating "result[0] > 0": panic: `)

	phase, msg := judge(&PlannedMetric{Success: c}, vector(1))
	assert.Equal(t, v1alpha1.AnalysisPhaseError, phase)
	assert.Contains(t, msg, `successCondition: evaluating "result[0] > 0": panic: `)
}

func TestRangeSeriesPoints(t *testing.T) {
	c, err := CompileCondition("all(series, all(.values, # < 1))")
	require.NoError(t, err)
	r := metricsq.Result{Type: model.ValMatrix, Values: []float64{0.5}, Series: []metricsq.Sample{{Labels: map[string]string{}, Value: 0.5, Values: []float64{0.2, 0.5}}}}
	ok, err := c.Eval(r)
	require.NoError(t, err)
	assert.True(t, ok, "series[].values holds a range query's points, as the API documents")
}
