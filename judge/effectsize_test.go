package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMeanRatio(t *testing.T) {
	assert.Equal(t, 2.0, meanRatio(4, 2))
	assert.Equal(t, 0.5, meanRatio(-1, -2))
	assert.True(t, math.IsNaN(meanRatio(0, 2)), "canary mean 0")
	assert.True(t, math.IsNaN(meanRatio(3, 0)), "baseline mean 0")
}

func TestCLES(t *testing.T) {
	tests := []struct {
		name string
		x, y []float64
		want float64
	}{
		{"all above", []float64{5, 6}, []float64{1, 2, 3}, 1},
		{"all below", []float64{1, 2}, []float64{5, 6, 7}, 0},
		{"identical", []float64{1, 2, 3}, []float64{1, 2, 3}, 0.5},
		// Of the pairs (1,2), (1,4), (3,2), (3,4) only 3 > 2.
		{"interleaved", []float64{1, 3}, []float64{2, 4}, 0.25},
		// x=2 beats y=1, ties y=2, loses to y=3: (1 + 0.5) / 3.
		{"one point", []float64{2}, []float64{1, 2, 3}, 0.5},
		{"mostly above", []float64{2, 4, 6}, []float64{1, 3, 5}, 6.0 / 9},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, cles(tt.x, tt.y), 1e-12, tt.name)
	}
}
