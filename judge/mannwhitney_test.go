package judge

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Kayenta's published vector, checked there against R's wilcox.test.
func TestMannWhitneyKayentaVector(t *testing.T) {
	got, err := MannWhitney([]float64{10, 20, 30, 40}, []float64{1, 2, 3, 4}, 0.95)
	require.NoError(t, err)
	assert.InDelta(t, 6.0, got.Low, 1e-6)
	assert.InDelta(t, 39.0, got.High, 1e-6)
	assert.InDelta(t, 22.5, got.Estimate, 1e-6)
}

func TestMannWhitneyRejects(t *testing.T) {
	ok := []float64{1, 2, 3}
	tests := []struct {
		name       string
		x, y       []float64
		confidence float64
		want       error
	}{
		{"empty x", nil, ok, 0.95, ErrNoData},
		{"empty y", ok, []float64{}, 0.95, ErrNoData},
		{"NaN", []float64{1, math.NaN()}, ok, 0.95, ErrNonFinite},
		{"Inf", ok, []float64{math.Inf(-1)}, 0.95, ErrNonFinite},
		{"all tied", []float64{2, 2}, []float64{2, 2, 2}, 0.95, ErrAllTied},
		{"two constants tie at the ends", []float64{3, 3}, []float64{1}, 0.95, ErrAllTied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MannWhitney(tt.x, tt.y, tt.confidence)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	for _, c := range []float64{0, 1, -0.5, 1.5, math.NaN()} {
		_, err := MannWhitney(ok, ok, c)
		assert.Error(t, err, "confidence %v", c)
	}
}

// pairDiffs are the nx*ny differences x_i - y_j, sorted.
func pairDiffs(x, y []float64) []float64 {
	d := make([]float64, 0, len(x)*len(y))
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	slices.Sort(d)
	return d
}

// hodgesLehmann is the estimate by definition: the median of all pairwise differences.
func hodgesLehmann(x, y []float64) float64 {
	d := pairDiffs(x, y)
	m := len(d)
	if m%2 == 1 {
		return d[m/2]
	}
	return (d[m/2-1] + d[m/2]) / 2
}

// gapZ is the normal-approximation statistic for a shift strictly between the k-th and
// (k+1)-th pairwise difference (1-based) when no points tie: then M - k pairs have
// x_i - d > y_j, so dz = M/2 - k and sigma has no tie term.
func gapZ(k, nx, ny int) float64 {
	m := float64(nx * ny)
	dz := m/2 - float64(k)
	corr := 0.0
	switch {
	case dz > 0:
		corr = 0.5
	case dz < 0:
		corr = -0.5
	}
	return (dz - corr) / math.Sqrt(m*float64(nx+ny+1)/12)
}

// orderStatisticRoot is where the statistic falls below level, by the order statistics of
// the pairwise differences: it jumps at each difference, so the root is the difference
// D_k at the first gap k whose statistic is below level, or D_1 if it starts below.
func orderStatisticRoot(diffs []float64, nx, ny int, level float64) float64 {
	for k := 1; k <= len(diffs); k++ {
		if gapZ(k, nx, ny) < level {
			return diffs[k-1]
		}
	}
	return diffs[len(diffs)-1]
}

// Cross-checks on random small samples without ties (continuous values tie with
// probability 0), at a scale run as R does and at one the judge scales up.
//
// Tolerances: the root finder stops once its bracket, which holds the jump, is within
// 2*tolAct = tol + 4*eps*|root| in the scale it runs at; the bounds are such jumps. The
// estimate is not: with the continuity correction the statistic is exactly 0 on the whole
// gap around the middle differences (|dz| <= 0.5 there), so the root finder may stop
// anywhere in it, while the exact Hodges-Lehmann estimate is that gap's middle value or
// midpoint. So the estimate must lie in the gap (within the bracket tolerance) and is then
// within the gap's width of the exact median, which is the reasoned bound checked.
func TestMannWhitneyAgainstOrderStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 98))
	q := normalQuantile((1 - Confidence) / 2)
	for _, scale := range []float64{100, 1e-3} {
		for range 300 {
			nx, ny := 2+rng.IntN(14), 2+rng.IntN(14)
			x, y := make([]float64, nx), make([]float64, ny)
			shift := (rng.Float64() - 0.3) * scale
			for i := range x {
				x[i] = rng.Float64()*scale + shift
			}
			for i := range y {
				y[i] = rng.Float64() * scale
			}
			got, err := MannWhitney(x, y, Confidence)
			require.NoError(t, err)

			xs, ys := slices.Sorted(slices.Values(x)), slices.Sorted(slices.Values(y))
			unit := math.Ldexp(1, -scaleExp(xs, ys))
			diffs := pairDiffs(x, y)
			slack := func(v float64) float64 { return rootTolerance*unit + 4*0x1p-52*math.Abs(v) }

			low := orderStatisticRoot(diffs, nx, ny, -q)
			high := orderStatisticRoot(diffs, nx, ny, q)
			assert.InDelta(t, low, got.Low, slack(low), "low x=%v y=%v", x, y)
			assert.InDelta(t, high, got.High, slack(high), "high x=%v y=%v", x, y)

			first, last := -1, -1
			for k := 0; k <= len(diffs); k++ {
				if gapZ(k, nx, ny) == 0 {
					if first < 0 {
						first = k
					}
					last = k
				}
			}
			require.GreaterOrEqual(t, first, 1, "the zero gap lies inside the differences")
			gapLo, gapHi := diffs[first-1], diffs[last]
			assert.GreaterOrEqual(t, got.Estimate, gapLo-slack(gapLo), "estimate in the zero gap")
			assert.LessOrEqual(t, got.Estimate, gapHi+slack(gapHi), "estimate in the zero gap")
			hl := hodgesLehmann(x, y)
			assert.InDelta(t, hl, got.Estimate, (gapHi-gapLo)+slack(gapHi), "x=%v y=%v", x, y)
		}
	}
}

// A shift of x moves the interval with it; swapping sides mirrors it.
func TestMannWhitneyEquivariance(t *testing.T) {
	x := []float64{12.1, 15.3, 9.8, 14.2, 18.9, 11.4, 13.3}
	y := []float64{10.2, 8.7, 11.9, 9.1, 10.8, 12.5}
	base, err := MannWhitney(x, y, Confidence)
	require.NoError(t, err)

	moved := make([]float64, len(x))
	for i, v := range x {
		moved[i] = v + 7
	}
	got, err := MannWhitney(moved, y, Confidence)
	require.NoError(t, err)
	assert.InDelta(t, base.Low+7, got.Low, 2*rootTolerance)
	assert.InDelta(t, base.High+7, got.High, 2*rootTolerance)

	mirror, err := MannWhitney(y, x, Confidence)
	require.NoError(t, err)
	assert.InDelta(t, -base.High, mirror.Low, 2*rootTolerance)
	assert.InDelta(t, -base.Low, mirror.High, 2*rootTolerance)
}

// Small metrics are judged at a scale where the root finder's tolerance is relative, so
// dividing the data by a power of two divides every figure exactly. With R's absolute
// tolerance the tiny copy would get an interval as wide as its data.
func TestMannWhitneyScaleFree(t *testing.T) {
	x := []float64{0.31, 0.35, 0.29, 0.4, 0.38, 0.33, 0.36, 0.41}
	y := []float64{0.3, 0.28, 0.32, 0.27, 0.31, 0.29, 0.26, 0.3}
	base, err := MannWhitney(x, y, Confidence)
	require.NoError(t, err)
	tiny := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = math.Ldexp(f, -30)
		}
		return out
	}
	got, err := MannWhitney(tiny(x), tiny(y), Confidence)
	require.NoError(t, err)
	assert.Equal(t, math.Ldexp(base.Low, -30), got.Low)
	assert.Equal(t, math.Ldexp(base.High, -30), got.High)
	assert.Equal(t, math.Ldexp(base.Estimate, -30), got.Estimate)
	assert.Greater(t, got.Low, 0.0, "the canary is clearly higher even at 1e-10")
}

// Near the largest float64 the test runs scaled down, so nothing overflows to Inf or NaN.
func TestMannWhitneyHugeValues(t *testing.T) {
	m := math.MaxFloat64
	x := []float64{0.9 * m, 0.95 * m, m}
	y := []float64{-m, -0.9 * m, -0.95 * m}
	got, err := MannWhitney(x, y, Confidence)
	require.NoError(t, err)
	for _, v := range []float64{got.Low, got.High, got.Estimate} {
		assert.False(t, math.IsNaN(v))
	}
	s, err := fitShift(slices.Sorted(slices.Values(x)), slices.Sorted(slices.Values(y)), Confidence)
	require.NoError(t, err)
	assert.Less(t, s.exp, 0)
	assert.Greater(t, s.low, 0.0, "the scaled interval keeps its sign")
	assert.False(t, math.IsInf(s.high, 0))
}

// The standardised statistic against hand computation from its definition.
func TestWilcoxonStatistic(t *testing.T) {
	tests := []struct {
		name string
		x, y []float64
		d    float64
		want float64
	}{
		// Ranks of [1,1,2 | 1,2,2]: the 1s share 2, the 2s share 5, so rx = 9 and
		// dz = 9 - 6 - 4.5 = -1.5, corrected to -1; T = 24 + 24 and
		// sigma = sqrt(9/12 * (7 - 48/30)) = sqrt(4.05).
		{"ties", []float64{1, 1, 2}, []float64{1, 2, 2}, 0, -1 / math.Sqrt(4.05)},
		// rx = 3 + 4, dz = 7 - 3 - 2 = 2, corrected to 1.5; sigma = sqrt(4/12 * 5).
		{"no ties", []float64{10, 20}, []float64{1, 2}, 0, 1.5 / math.Sqrt(5.0/3)},
		// Shifted by 10.5: [-0.5, 9.5 | 1, 2] gives rx = 1 + 4, dz = 0, no correction.
		{"balanced", []float64{10, 20}, []float64{1, 2}, 10.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wilcoxon{xs: tt.x, ys: tt.y, scale: 1}
			got, err := w.z(tt.d)
			require.NoError(t, err)
			assert.InDelta(t, tt.want, got, 1e-12)
		})
	}
}

// Two far outliers give a span near 2^999 while the roots sit near 0; bisection from
// there to R's absolute 1e-4 would take more than the root finder's 1000 iterations, so
// the span is scaled down to 2^512 first.
func TestMannWhitneyHugeSpanConverges(t *testing.T) {
	x := []float64{-1e300, 1e300}
	y := []float64{-1e300, 1e300}
	for i := range 18 {
		x = append(x, float64((i*7)%19)-9)
		y = append(y, float64((i*5)%19)-8.5)
	}
	got, err := MannWhitney(x, y, Confidence)
	require.NoError(t, err)
	assert.LessOrEqual(t, got.Low, got.Estimate)
	assert.LessOrEqual(t, got.Estimate, got.High)
	// The span 4e300 is in [2^998, 2^999).
	assert.Equal(t, maxSpanExp-999, scaleExp(slices.Sorted(slices.Values(x)), slices.Sorted(slices.Values(y))))
}
