package analysis

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
)

// FuzzConditionEval compiles arbitrary condition sources and evaluates them on arbitrary
// results. Neither may panic, whatever users write or Prometheus returns; evaluating twice
// gives the same verdict (compiled programs and pooled machines keep no state between
// evaluations); and every failure to evaluate, an expression error or a recovered panic,
// is an Error measurement whose message names the condition.
func FuzzConditionEval(f *testing.F) {
	for _, seed := range []struct {
		src    string
		a, b   float64
		n      uint8
		scalar bool
	}{
		{"result[0] >= 0.95", 0.97, 0, 1, false},
		{"default(result[0], 0) < 1", math.NaN(), 0, 0, false},
		{"isNaN(result[0]) || isInf(result[1])", math.NaN(), math.Inf(1), 2, false},
		{"all(series, .value > 0) && len(result) == 2", 1, 2, 2, false},
		{"value < 0.05", 0.01, 0, 1, false},
		{"value < 0.05", 0.01, 0.02, 2, false},
		{"result > 0.5", 0.7, 0, 1, true},
		{"result > 0.5", 0.7, 0, 1, false},
		{"asInt(result[0]) == 3", 3.9, 0, 1, false},
		{"asInt(result[0]) == 3", math.Inf(1), 0, 1, false},
		{`series[0].labels.pod == "a"`, 1, 0, 1, false},
		{"all(series, len(.values) == 0)", 1, 0, 1, false},
		{"result[5]", 1, 0, 1, false},
		{"default(series[3].labels.x, \"\") == \"\"", 1, 1, 2, false},
	} {
		f.Add(seed.src, seed.a, seed.b, seed.n, seed.scalar)
	}
	f.Fuzz(func(t *testing.T, src string, a, b float64, n uint8, scalar bool) {
		c, err := CompileCondition(src)
		if err != nil {
			return
		}
		r := metricsq.Result{Type: model.ValVector}
		for i := 0; i < int(n%4); i++ {
			v := a
			if i%2 == 1 {
				v = b
			}
			r.Values = append(r.Values, v)
			r.Series = append(r.Series, metricsq.Sample{Labels: map[string]string{"pod": "a"}, Value: v})
		}
		if scalar {
			r = metricsq.Result{Type: model.ValScalar, Values: []float64{a}, Series: []metricsq.Sample{{Value: a, Labels: map[string]string{}}}}
		}

		ok, err := c.Eval(r)
		okAgain, errAgain := c.Eval(r)
		require.Equal(t, ok, okAgain, "the same result, the same value")
		require.Equal(t, fmt.Sprint(err), fmt.Sprint(errAgain), "the same result, the same error")
		if err != nil {
			require.False(t, ok)
			require.Contains(t, err.Error(), strconv.Quote(src), "an evaluation error names the condition")
		}

		pm := &PlannedMetric{Success: c}
		phase, msg := judge(pm, r)
		phaseAgain, msgAgain := judge(pm, r)
		require.Equal(t, phase, phaseAgain, "the same result, the same phase")
		require.Equal(t, msg, msgAgain)
		switch {
		case err != nil:
			require.Equal(t, v1alpha1.AnalysisPhaseError, phase, msg)
			require.Contains(t, msg, "successCondition: ")
			require.Contains(t, msg, strconv.Quote(src))
		case ok:
			require.Equal(t, v1alpha1.AnalysisPhaseSuccessful, phase, msg)
		default:
			require.Equal(t, v1alpha1.AnalysisPhaseFailed, phase, msg)
		}
	})
}
