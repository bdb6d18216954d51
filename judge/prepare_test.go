package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrepare(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		values   []float64
		settings Settings
		want     []float64
		sample   Sample
	}{
		{"sorted, NaN removed by default", []float64{3, nan, 1, 2, nan}, Settings{},
			[]float64{1, 2, 3}, Sample{Points: 5, NaN: 2, Count: 3, Median: 2, Mean: 2}},
		{"NaN replaced by 0", []float64{3, nan, 1}, Settings{NaN: NaNReplace},
			[]float64{0, 1, 3}, Sample{Points: 3, NaN: 1, Count: 3, Median: 1, Mean: 4.0 / 3}},
		{"outliers kept by default", []float64{10, 11, 12, 13, 1000}, Settings{},
			[]float64{10, 11, 12, 13, 1000}, Sample{Points: 5, Count: 5, Median: 12, Mean: 209.2}},
		{"outliers removed", []float64{10, 11, 12, 13, 14, 15, 16, 17, 1000}, Settings{Outliers: OutliersRemove},
			[]float64{10, 11, 12, 13, 14, 15, 16, 17}, Sample{Points: 9, Outliers: 1, Count: 8, Median: 13.5, Mean: 13.5}},
		{"the outlier factor is used", []float64{10, 11, 12, 13, 14, 15, 16, 17, 1000}, Settings{Outliers: OutliersRemove, OutlierFactor: new(1000.0)},
			[]float64{10, 11, 12, 13, 14, 15, 16, 17, 1000}, Sample{Points: 9, Count: 9, Median: 14, Mean: 1108.0 / 9}},
		// The 0 lies below Q1 - 3*IQR = 1001 - 12 and below P1.
		{"replaced NaN can be outliers", []float64{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, nan}, Settings{NaN: NaNReplace, Outliers: OutliersRemove},
			[]float64{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007}, Sample{Points: 9, NaN: 1, Outliers: 1, Count: 8, Median: 1003.5, Mean: 1003.5}},
		{"all NaN removed", []float64{nan, nan}, Settings{},
			[]float64{}, Sample{Points: 2, NaN: 2, Median: nan, Mean: nan}},
		{"overflowing sum", []float64{math.MaxFloat64, math.MaxFloat64}, Settings{},
			[]float64{math.MaxFloat64, math.MaxFloat64}, Sample{Points: 2, Count: 2, Median: math.MaxFloat64, Mean: math.MaxFloat64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.settings.resolve()
			require.NoError(t, err)
			in := append([]float64(nil), tt.values...)
			got, s, err := prepare(make([]float64, 0, len(in)), in, c)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.sample.Points, s.Points)
			assert.Equal(t, tt.sample.NaN, s.NaN)
			assert.Equal(t, tt.sample.Outliers, s.Outliers)
			assert.Equal(t, tt.sample.Count, s.Count)
			assertFloat(t, tt.sample.Median, s.Median, "median")
			assertFloat(t, tt.sample.Mean, s.Mean, "mean")
			for i := range in {
				assert.True(t, in[i] == tt.values[i] || math.IsNaN(in[i]) && math.IsNaN(tt.values[i]), "input unchanged")
			}
		})
	}
}

func TestPrepareRejectsInfinity(t *testing.T) {
	for _, v := range []float64{math.Inf(1), math.Inf(-1)} {
		_, _, err := prepare(nil, []float64{1, v}, config{nan: NaNRemove, outliers: OutliersKeep})
		assert.ErrorIs(t, err, ErrNonFinite)
		assert.ErrorContains(t, err, "at point 1")
	}
}

// assertFloat compares floats where NaN equals NaN.
func assertFloat(t *testing.T, want, got float64, msg string) {
	t.Helper()
	if math.IsNaN(want) {
		assert.True(t, math.IsNaN(got), "%s: want NaN, got %v", msg, got)
		return
	}
	assert.InDelta(t, want, got, 1e-9*math.Max(1, math.Abs(want)), msg)
}
