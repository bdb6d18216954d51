package judge

import "math"

// meanRatio is mean(x) / mean(y), NaN when either mean is 0: a ratio to or of nothing
// says nothing about the size of a change.
func meanRatio(meanX, meanY float64) float64 {
	if meanX == 0 || meanY == 0 {
		return math.NaN()
	}
	return meanX / meanY
}

// cles is the common-language effect size of sorted x against sorted y: the probability
// that a point of x exceeds a point of y, ties counting half, which is the Mann-Whitney U
// of x over nx*ny.
func cles(xs, ys []float64) float64 {
	rx, _, _ := rankSum(xs, ys, 1, 0)
	m, n := float64(len(xs)), float64(len(ys))
	return (2*rx - m*(m+1)) / (2 * m * n)
}
