package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPercentileR7(t *testing.T) {
	oneTo100 := make([]float64, 100)
	for i := range oneTo100 {
		oneTo100[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		// R: quantile(1:4, c(.25, .5, .75)) is 1.75, 2.5, 3.25.
		{"Q1 of 1..4", []float64{1, 2, 3, 4}, 0.25, 1.75},
		{"median of 1..4", []float64{1, 2, 3, 4}, 0.5, 2.5},
		{"Q3 of 1..4", []float64{1, 2, 3, 4}, 0.75, 3.25},
		{"median of odd count", []float64{1, 5, 9}, 0.5, 5},
		// h = 99*0.01 + 1 = 1.99: between the first and second point.
		{"P1 of 1..100", oneTo100, 0.01, 1.99},
		{"P99 of 1..100", oneTo100, 0.99, 99.01},
		{"min", []float64{3, 4, 8}, 0, 3},
		{"max", []float64{3, 4, 8}, 1, 8},
		{"one point", []float64{7}, 0.3, 7},
		{"overflowing difference", []float64{-math.MaxFloat64, math.MaxFloat64}, 0.5, 0},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, percentile(tt.sorted, tt.p), 1e-12, tt.name)
	}
}

func TestWithoutOutliers(t *testing.T) {
	flat := make([]float64, 0, 100)
	flat = append(flat, 1)
	for range 98 {
		flat = append(flat, 5)
	}
	flat = append(flat, 9)
	// As flat, with points just inside P1 (4.94) and P99 (5.06) but outside the IQR fence.
	near := join([]float64{1, 4.98}, repeat(5, 96), []float64{5.02, 9})
	tests := []struct {
		name   string
		sorted []float64
		factor float64
		want   []float64
	}{
		{"spike above", []float64{10, 11, 12, 13, 14, 15, 16, 17, 1000}, 3, []float64{10, 11, 12, 13, 14, 15, 16, 17}},
		{"spike below", []float64{-1000, 10, 11, 12, 13, 14, 15, 16, 17}, 3, []float64{10, 11, 12, 13, 14, 15, 16, 17}},
		{"a wide factor keeps it", []float64{10, 11, 12, 13, 14, 15, 16, 17, 1000}, 1000, []float64{10, 11, 12, 13, 14, 15, 16, 17, 1000}},
		// Q1 = Q3 = 5, so the IQR fence is [5, 5]; the P1 (4.96) and P99 (5.04) fences
		// are wider, and 1 and 9 fall outside them.
		{"zero IQR falls back to P1 and P99", flat, 3, flat[1:99]},
		{"the P1 and P99 fences keep what the IQR fence would drop", near, 3, near[1:99]},
		{"factor 0 still keeps the P1..P99 range", []float64{1, 2, 3, 4}, 0, []float64{2, 3}},
		{"one point", []float64{4}, 3, []float64{4}},
		{"empty", []float64{}, 3, []float64{}},
		{"factor 0 with an IQR that overflows", []float64{-math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64, math.MaxFloat64}, 0, []float64{-math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64, math.MaxFloat64}},
		{"huge spread", []float64{-math.MaxFloat64, 0, math.MaxFloat64}, 3, []float64{-math.MaxFloat64, 0, math.MaxFloat64}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, withoutOutliers(tt.sorted, tt.factor), tt.name)
	}
}
