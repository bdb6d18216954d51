package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalQuantileKnownValues(t *testing.T) {
	tests := []struct {
		p    float64
		want float64
	}{
		{0.5, 0},
		{0.975, 1.959963984540054},
		{0.025, -1.959963984540054},
		{0.01, -2.3263478740408408},
		{0.99, 2.3263478740408408},
		{0.05, -1.6448536269514729},
		{0.9, 1.2815515655446004},
		{0.001, -3.090232306167813},
		{1e-10, -6.361340902404056},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, normalQuantile(tt.p), 1e-12, "p=%v", tt.p)
	}
}

// The judge's z for confidence 0.98, as the Kayenta vectors give it.
func TestNormalQuantileJudgeConfidence(t *testing.T) {
	assert.InDelta(t, -2.326348, normalQuantile((1-Confidence)/2), 1e-6)
}

// Phi(q(p)) must give p back; math.Erfc is accurate in both tails, so this checks every
// branch of the approximation independently of its coefficients. An error dp in p is an
// error dp/phi(q) in q, which is what the bound is on.
func TestNormalQuantileRoundTrip(t *testing.T) {
	var ps []float64
	for e := -300.0; e < 0; e += 0.37 {
		ps = append(ps, math.Pow(10, e))
	}
	for p := 0.001; p < 1; p += 0.001 {
		ps = append(ps, p)
	}
	for _, p := range ps {
		for _, p := range []float64{p, 1 - p} {
			if p <= 0 || p >= 1 {
				continue
			}
			q := normalQuantile(p)
			var back float64
			if q < 0 {
				back = 0.5 * math.Erfc(-q/math.Sqrt2)
			} else {
				back = 1 - 0.5*math.Erfc(q/math.Sqrt2)
			}
			density := math.Exp(-q*q/2) / math.Sqrt(2*math.Pi)
			// 1-p rounds to a multiple of 2^-53 near 1, which no quantile can undo.
			slack := 1e-9 * density
			if p > 0.5 {
				slack += 0x1p-52
			}
			assert.LessOrEqual(t, math.Abs(back-p), slack, "p=%v q=%v", p, q)
		}
	}
}

func TestNormalQuantileEdges(t *testing.T) {
	assert.True(t, math.IsInf(normalQuantile(0), -1))
	assert.True(t, math.IsInf(normalQuantile(-1), -1))
	assert.True(t, math.IsInf(normalQuantile(1), 1))
	assert.True(t, math.IsNaN(normalQuantile(math.NaN())))
	assert.Equal(t, -normalQuantile(0.3), normalQuantile(0.7), "symmetric")
}
