package judge

import (
	"errors"
	"fmt"
	"math"
)

// Root finding as R's uniroot does it, so intervals match wilcox.test's.
const (
	rootTolerance = 1e-4
	rootMaxIter   = 1000
)

var (
	errNotBracketed  = errors.New("root finder: f(a) and f(b) have the same sign")
	errNoConvergence = errors.New("root finder: no convergence")
)

// brent finds a root of f in [a, b], where fa = f(a) and fb = f(b) differ in sign, by
// Brent's method: inverse quadratic or secant steps while they stay well inside the
// bracket, bisection otherwise, so it never does worse than bisection. It stops when the
// bracket is within tol (plus rounding at the root's magnitude) or f is exactly 0 there.
//
// The callers' f is a step function (a rank statistic); Brent then converges on the jump,
// which bisection alone would reach more slowly.
func brent(f func(float64) (float64, error), a, b, fa, fb, tol float64, maxIter int) (float64, error) {
	if fa == 0 {
		return a, nil
	}
	if fb == 0 {
		return b, nil
	}
	if (fa > 0) == (fb > 0) {
		return 0, fmt.Errorf("%w on [%g, %g]", errNotBracketed, a, b)
	}
	const eps = 0x1p-52
	// b is the best guess, c the other end of the bracket, a the previous b.
	c, fc := a, fa
	for range maxIter {
		prev := b - a
		if math.Abs(fc) < math.Abs(fb) {
			a, b, c = b, c, b
			fa, fb, fc = fb, fc, fb
		}
		tolAct := 2*eps*math.Abs(b) + tol/2
		step := (c - b) / 2
		if math.Abs(step) <= tolAct || fb == 0 {
			return b, nil
		}
		// Interpolate only if the last step shrank things and b improved on a.
		if math.Abs(prev) >= tolAct && math.Abs(fa) > math.Abs(fb) {
			cb := c - b
			var p, q float64
			if a == c {
				t1 := fb / fa
				p = cb * t1
				q = 1 - t1
			} else {
				q = fa / fc
				t1 := fb / fc
				t2 := fb / fa
				p = t2 * (cb*q*(q-t1) - (b-a)*(t1-1))
				q = (q - 1) * (t1 - 1) * (t2 - 1)
			}
			if p > 0 {
				q = -q
			} else {
				p = -p
			}
			// Take the interpolated step only if it lands well inside the bracket and is
			// under half the previous step, so progress is never slower than bisection.
			if p < 0.75*cb*q-math.Abs(tolAct*q)/2 && p < math.Abs(prev*q/2) {
				step = p / q
			}
		}
		if math.Abs(step) < tolAct {
			step = math.Copysign(tolAct, step)
		}
		a, fa = b, fb
		b += step
		var err error
		if fb, err = f(b); err != nil {
			return 0, err
		}
		// Keep the root between b and c.
		if (fb > 0 && fc > 0) || (fb < 0 && fc < 0) {
			c, fc = a, fa
		}
	}
	return b, fmt.Errorf("%w after %d iterations", errNoConvergence, maxIter)
}
