package judge

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func plain(f func(float64) float64) func(float64) (float64, error) {
	return func(x float64) (float64, error) { return f(x), nil }
}

func TestBrentFindsRoots(t *testing.T) {
	tests := []struct {
		name string
		f    func(float64) float64
		a, b float64
		root float64
		// Bisection needs log2((b-a)/tol) calls: 15, 14, 20, 20 and 25 here. Interpolation
		// must beat it on smooth functions and cost little extra on jumps.
		maxCalls int
	}{
		{"sqrt2", func(x float64) float64 { return x*x - 2 }, 0, 2, math.Sqrt2, 8},
		{"decreasing", func(x float64) float64 { return math.Cos(x) - x }, 0, 1, 0.7390851332151607, 6},
		{"cubic off-centre", func(x float64) float64 { return (x - 0.1) * (x*x + 1) }, -5, 100, 0.1, 19},
		{"step at 6", func(x float64) float64 {
			if x <= 6 {
				return 0.07
			}
			return -0.08
		}, 6 - 33, 39, 6, 22},
		{"flat then steep", func(x float64) float64 { return math.Atan(1e6 * (x - 3)) }, -1000, 1000, 3, 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			f := func(x float64) (float64, error) {
				calls++
				return tt.f(x), nil
			}
			got, err := brent(f, tt.a, tt.b, tt.f(tt.a), tt.f(tt.b), rootTolerance, rootMaxIter)
			require.NoError(t, err)
			// The bracket is under 2*tolAct when it stops, and the root is inside it.
			assert.InDelta(t, tt.root, got, rootTolerance+4*0x1p-52*math.Abs(tt.root))
			assert.LessOrEqual(t, calls, tt.maxCalls)
		})
	}
}

func TestBrentEndsAndFailures(t *testing.T) {
	lin := plain(func(x float64) float64 { return x - 1 })

	got, err := brent(lin, 1, 5, 0, 4, rootTolerance, rootMaxIter)
	require.NoError(t, err)
	assert.Equal(t, 1.0, got, "f(a) = 0 is the root")

	got, err = brent(lin, -3, 1, -4, 0, rootTolerance, rootMaxIter)
	require.NoError(t, err)
	assert.Equal(t, 1.0, got, "f(b) = 0 is the root")

	_, err = brent(lin, 2, 5, 1, 4, rootTolerance, rootMaxIter)
	assert.ErrorIs(t, err, errNotBracketed)

	_, err = brent(lin, -1000, 1000, -1001, 999, 1e-12, 2)
	assert.ErrorIs(t, err, errNoConvergence)

	boom := errors.New("boom")
	_, err = brent(func(float64) (float64, error) { return 0, boom }, -1, 3, -2, 2, rootTolerance, rootMaxIter)
	assert.ErrorIs(t, err, boom)
}
