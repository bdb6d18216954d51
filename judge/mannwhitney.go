package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Errors of the Mann-Whitney interval; Classify reports them as Error results.
var (
	// ErrNoData is returned when a side has no points.
	ErrNoData = errors.New("no data")
	// ErrNonFinite is returned for a NaN or infinite point, which has no rank against finite ones.
	ErrNonFinite = errors.New("non-finite value")
	// ErrAllTied is returned when every point ties, which leaves the statistic without variance.
	ErrAllTied = errors.New("cannot compute a confidence interval when all observations are tied")
)

// MannWhitneyResult is a confidence interval and the Hodges-Lehmann estimate of the shift x - y.
type MannWhitneyResult struct {
	Low, High, Estimate float64
}

// MannWhitney estimates the shift of x against y with a two-sided confidence interval, as R's
// wilcox.test(x, y, conf.int=TRUE, conf.level=confidence, exact=FALSE, correct=TRUE) does.
func MannWhitney(x, y []float64, confidence float64) (MannWhitneyResult, error) {
	if !(confidence > 0 && confidence < 1) {
		return MannWhitneyResult{}, fmt.Errorf("confidence %v is not in (0, 1)", confidence)
	}
	xs, err := sortedFinite(x)
	if err != nil {
		return MannWhitneyResult{}, fmt.Errorf("x: %w", err)
	}
	ys, err := sortedFinite(y)
	if err != nil {
		return MannWhitneyResult{}, fmt.Errorf("y: %w", err)
	}
	s, err := fitShift(xs, ys, confidence)
	if err != nil {
		return MannWhitneyResult{}, err
	}
	low, high, est := s.unscaled()
	return MannWhitneyResult{Low: low, High: high, Estimate: est}, nil
}

func sortedFinite(v []float64) ([]float64, error) {
	if len(v) == 0 {
		return nil, ErrNoData
	}
	for i, f := range v {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w %v at point %d", ErrNonFinite, f, i)
		}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s, nil
}

// shift is an interval and estimate of the shift held at scale 2^exp, where the test's
// arithmetic neither overflows nor meets a root-finder tolerance coarse against the data.
// Decisions compare these scaled values (the rules are invariant under positive scaling);
// reports use unscaled().
type shift struct {
	low, high, estimate float64
	exp                 int
	// tol is the root finder's tolerance the values were found with, 0 if they are exact.
	tol float64
}

// resolution is how far the true root may lie from v, a value the root finder returned:
// it stops once its bracket, which holds the root, is within 2*tolAct = tol + 4*eps*|v|.
func (s shift) resolution(v float64) float64 {
	if s.tol == 0 {
		return 0
	}
	return s.tol + 4*0x1p-52*math.Abs(v)
}

func (s shift) unscaled() (low, high, estimate float64) {
	return math.Ldexp(s.low, -s.exp), math.Ldexp(s.high, -s.exp), math.Ldexp(s.estimate, -s.exp)
}

// scaleExp picks the power of two the test runs at. R's root finder stops at an absolute
// tolerance of 1e-4, which is coarse for metrics such as error ratios (a span of 1e-3 or
// less would get an interval nearly as wide as the data), so a span under 1 is scaled up to
// [1, 2) and the tolerance becomes relative; spans from 1 to 2^512 run unscaled, exactly as
// in R. Larger spans are scaled down to 2^512, where bisection to 1e-4 takes about 525 of
// the root finder's 1000 iterations (at 2^1000 it would not converge), and the magnitude
// is capped at 2^1021, so x - d and the root finder's bracket (at most four times the
// magnitude) stay finite for any finite input.
func scaleExp(xs, ys []float64) int {
	maxAbs := max(math.Abs(xs[0]), math.Abs(xs[len(xs)-1]), math.Abs(ys[0]), math.Abs(ys[len(ys)-1]))
	_, e := math.Frexp(maxAbs)
	limit := min(1021-e, 1023)
	// Half the span cannot overflow; the span is in [2^(es-1), 2^es).
	half := (xs[len(xs)-1]/2 - xs[0]/2) + (ys[len(ys)-1]/2 - ys[0]/2)
	if half <= 0 {
		return min(0, limit)
	}
	_, es := math.Frexp(half)
	es++
	switch {
	case es <= 0:
		return min(1-es, limit)
	case es > maxSpanExp:
		return min(maxSpanExp-es, limit)
	default:
		return min(0, limit)
	}
}

// maxSpanExp bounds the span the root finder works on to 2^maxSpanExp.
const maxSpanExp = 512

// wilcoxon is the normal approximation of the Mann-Whitney statistic for the shift d,
// with continuity and tie correction, over sorted x and y at a power-of-two scale.
type wilcoxon struct {
	xs, ys []float64
	scale  float64
}

// z is (dz - 0.5*sign(dz)) / sigma for concat(x - d, y), the standardised statistic that
// falls as d grows; R's wdiff is z(d) - zq.
func (w *wilcoxon) z(d float64) (float64, error) {
	nx, ny := float64(len(w.xs)), float64(len(w.ys))
	rx, ties, allTied := rankSum(w.xs, w.ys, w.scale, d)
	if allTied {
		return 0, ErrAllTied
	}
	n := nx + ny
	dz := rx - nx*(nx+1)/2 - nx*ny/2
	correction := 0.0
	switch {
	case dz > 0:
		correction = 0.5
	case dz < 0:
		correction = -0.5
	}
	sigma := math.Sqrt((nx * ny / 12) * ((n + 1) - ties/(n*(n-1))))
	return (dz - correction) / sigma, nil
}

// fitShift computes the interval and estimate on sorted, finite, non-empty sides.
func fitShift(xs, ys []float64, confidence float64) (shift, error) {
	exp := scaleExp(xs, ys)
	w := wilcoxon{xs: xs, ys: ys, scale: math.Ldexp(1, exp)}
	lo := xs[0]*w.scale - ys[len(ys)-1]*w.scale
	hi := xs[len(xs)-1]*w.scale - ys[0]*w.scale
	zlo, err := w.z(lo)
	if err != nil {
		return shift{}, err
	}
	zhi, err := w.z(hi)
	if err != nil {
		return shift{}, err
	}
	q := normalQuantile((1 - confidence) / 2)
	s := shift{exp: exp, tol: rootTolerance}
	if s.low, err = w.root(-q, lo, hi, zlo, zhi); err != nil {
		return shift{}, fmt.Errorf("lower bound: %w", err)
	}
	if s.high, err = w.root(q, lo, hi, zlo, zhi); err != nil {
		return shift{}, fmt.Errorf("upper bound: %w", err)
	}
	if s.estimate, err = w.root(0, lo, hi, zlo, zhi); err != nil {
		return shift{}, fmt.Errorf("estimate: %w", err)
	}
	return s, nil
}

// root solves z(d) = level on [lo, hi], given z there; a level the statistic never
// reaches inside the range takes the nearer end, as in R.
func (w *wilcoxon) root(level, lo, hi, zlo, zhi float64) (float64, error) {
	flo, fhi := zlo-level, zhi-level
	if flo <= 0 {
		return lo, nil
	}
	if fhi >= 0 {
		return hi, nil
	}
	return brent(func(d float64) (float64, error) {
		v, err := w.z(d)
		return v - level, err
	}, lo, hi, flo, fhi, rootTolerance, rootMaxIter)
}
