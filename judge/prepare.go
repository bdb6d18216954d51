package judge

import (
	"fmt"
	"math"
	"slices"
)

// Sample describes one side of a comparison and what pre-processing did to it.
type Sample struct {
	// Points is how many points the side had.
	Points int
	// NaN is how many of them were NaN (removed or replaced, by the NaN strategy).
	NaN int
	// Outliers is how many points were dropped as outliers.
	Outliers int
	// Count is how many points were judged.
	Count int
	// Median of the judged points; NaN when Count is 0.
	Median float64
	// Mean of the judged points; NaN when Count is 0.
	Mean float64
}

// prepare appends the side's points to dst (which must have room for all of them, so
// both sides share one allocation), handles NaN, sorts, drops outliers, and summarises.
// Order carries no meaning for the judge, so one sort here serves the outlier fences, the
// equality checks and every evaluation of the rank statistic.
func prepare(dst, values []float64, c config) ([]float64, Sample, error) {
	s := Sample{Points: len(values), Median: math.NaN(), Mean: math.NaN()}
	for i, v := range values {
		switch {
		case math.IsNaN(v):
			s.NaN++
			if c.nan == NaNReplace {
				dst = append(dst, 0)
			}
		case math.IsInf(v, 0):
			return nil, s, fmt.Errorf("%w %v at point %d", ErrNonFinite, v, i)
		default:
			dst = append(dst, v)
		}
	}
	slices.Sort(dst)
	if c.outliers == OutliersRemove {
		kept := withoutOutliers(dst, c.outlierFactor)
		s.Outliers = len(dst) - len(kept)
		dst = kept
	}
	s.Count = len(dst)
	if s.Count > 0 {
		s.Median = percentile(dst, 0.5)
		s.Mean = mean(dst)
	}
	return dst, s, nil
}

func mean(v []float64) float64 {
	n := float64(len(v))
	sum := 0.0
	for _, f := range v {
		sum += f
	}
	if !math.IsInf(sum, 0) {
		return sum / n
	}
	// The sum of finite points overflowed; the mean itself cannot.
	sum = 0
	for _, f := range v {
		sum += f / n
	}
	return sum
}
