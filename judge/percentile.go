package judge

import (
	"math"
	"sort"
)

// percentile is the p-th quantile (p in [0, 1]) of sorted, non-empty values by R's
// default rule 7: h = (n-1)p + 1 (1-based), interpolating linearly between the points
// either side of h.
func percentile(sorted []float64, p float64) float64 {
	h := float64(len(sorted)-1) * p
	i := int(h)
	frac := h - float64(i)
	if frac == 0 || i+1 >= len(sorted) {
		return sorted[i]
	}
	lo, hi := sorted[i], sorted[i+1]
	if v := lo + frac*(hi-lo); !math.IsInf(v, 0) {
		return v
	}
	// hi - lo overflowed; the weighted form cannot.
	return lo*(1-frac) + hi*frac
}

// withoutOutliers returns the part of sorted, finite values inside the fences
// [min(P1, Q1 - f*IQR), max(P99, Q3 + f*IQR)]. Taking the wider of the two fences keeps a
// side whose quartiles coincide (IQR 0, common for counters that rarely move) from losing
// every point that moves at all.
func withoutOutliers(sorted []float64, factor float64) []float64 {
	if len(sorted) == 0 {
		return sorted
	}
	q1, q3 := percentile(sorted, 0.25), percentile(sorted, 0.75)
	reach := 0.0
	if factor > 0 {
		// factor*IQR may be +Inf, which only widens the fence; 0*Inf would be NaN.
		reach = factor * (q3 - q1)
	}
	lower := min(percentile(sorted, 0.01), q1-reach)
	upper := max(percentile(sorted, 0.99), q3+reach)
	start := sort.SearchFloat64s(sorted, lower)
	end := sort.Search(len(sorted), func(i int) bool { return sorted[i] > upper })
	return sorted[start:end]
}
