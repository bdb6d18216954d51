package judge

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// benchSeries are a latency-like baseline and a canary 3% slower, n points each, at the
// millisecond resolution a histogram quantile often has, so ties occur.
func benchSeries(n int) (control, experiment []float64) {
	rng := rand.New(rand.NewPCG(60, 300))
	control, experiment = make([]float64, n), make([]float64, n)
	for i := range n {
		control[i] = math.Round(200*math.Exp(0.2*rng.NormFloat64())) / 1000
		experiment[i] = math.Round(206*math.Exp(0.2*rng.NormFloat64())) / 1000
	}
	return control, experiment
}

var benchResult Result

func BenchmarkClassify(b *testing.B) {
	for _, n := range []int{60, 300, 1500} {
		control, experiment := benchSeries(n)
		b.Run(fmt.Sprintf("points=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchResult = Classify(control, experiment, Settings{})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*n), "ns/point")
		})
	}
}
