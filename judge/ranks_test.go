package judge

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// naiveRanks ranks concat(x - d, y) by definition: 1 + the number of smaller points + half
// the other points equal to it; T counts each tie group once.
func naiveRanks(x, y []float64, d float64) (rx, ties float64, allTied bool) {
	all := make([]float64, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, v-d)
	}
	all = append(all, y...)
	counts := map[float64]int{}
	for _, v := range all {
		counts[v]++
	}
	for i := range x {
		less, equal := 0, 0
		for _, w := range all {
			switch {
			case w < all[i]:
				less++
			case w == all[i]:
				equal++
			}
		}
		rx += 1 + float64(less) + float64(equal-1)/2
	}
	for _, t := range counts {
		ties += float64(t*t*t - t)
	}
	return rx, ties, len(counts) == 1
}

func TestRankSumKnown(t *testing.T) {
	tests := []struct {
		name     string
		x, y     []float64
		d        float64
		rx, ties float64
		allTied  bool
	}{
		// Ranks of [4,14,24,34 | 1,2,3,4]: the two 4s share 4.5.
		{"tie across sides", []float64{10, 20, 30, 40}, []float64{1, 2, 3, 4}, 6, 4.5 + 6 + 7 + 8, 6, false},
		{"separated above", []float64{10, 20}, []float64{1, 2}, 0, 3 + 4, 0, false},
		{"separated below", []float64{1, 2}, []float64{10, 20}, 0, 1 + 2, 0, false},
		{"tie inside x", []float64{5, 5, 7}, []float64{6}, 0, 1.5 + 1.5 + 4, 6, false},
		{"all tied", []float64{3, 3}, []float64{1, 1, 1}, 2, 2 * 3, 5*5*5 - 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rx, ties, allTied := rankSum(tt.x, tt.y, 1, tt.d)
			assert.Equal(t, tt.rx, rx)
			assert.Equal(t, tt.ties, ties)
			assert.Equal(t, tt.allTied, allTied)
		})
	}
}

// The merge must agree with ranking by definition on data full of ties, at shifts that
// make x and y points coincide.
func TestRankSumMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		x := make([]float64, 1+rng.IntN(15))
		y := make([]float64, 1+rng.IntN(15))
		for i := range x {
			x[i] = float64(rng.IntN(8))
		}
		for i := range y {
			y[i] = float64(rng.IntN(8))
		}
		slices.Sort(x)
		slices.Sort(y)
		d := float64(rng.IntN(9)-4) / 2
		rx, ties, allTied := rankSum(x, y, 1, d)
		nrx, nties, nall := naiveRanks(x, y, d)
		assert.Equal(t, nrx, rx, "x=%v y=%v d=%v", x, y, d)
		assert.Equal(t, nties, ties, "x=%v y=%v d=%v", x, y, d)
		assert.Equal(t, nall, allTied, "x=%v y=%v d=%v", x, y, d)
	}
}

// Scaling by a power of two is exact, so ranks at scale s and shift s*d equal the unscaled ones.
func TestRankSumScaled(t *testing.T) {
	x := []float64{0.001, 0.002, 0.002, 0.004}
	y := []float64{0.0005, 0.001, 0.003}
	rx, ties, _ := rankSum(x, y, 1, 0.001)
	srx, sties, _ := rankSum(x, y, 0x1p20, 0.001*0x1p20)
	assert.Equal(t, rx, srx)
	assert.Equal(t, ties, sties)
}
