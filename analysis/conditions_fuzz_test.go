package analysis

import (
	"math"
	"testing"
)

// FuzzConditionEval compiles arbitrary condition sources and evaluates them on arbitrary
// results: neither may panic, whatever users write or Prometheus returns.
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
		{"result > 0.5", 0.7, 0, 1, true},
		{"asInt(result[0]) == 3", 3.9, 0, 1, false},
		{`series[0].labels.pod == "a"`, 1, 0, 1, false},
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
		in := Input{Scalar: scalar}
		for i := 0; i < int(n%4); i++ {
			v := a
			if i%2 == 1 {
				v = b
			}
			in.Values = append(in.Values, v)
			in.Series = append(in.Series, Series{Labels: map[string]string{"pod": "a"}, Value: v})
		}
		if scalar && len(in.Values) != 1 {
			in.Values, in.Series = []float64{a}, []Series{{Value: a, Labels: map[string]string{}}}
		}
		_, _ = c.Eval(in)
	})
}
