package judge

// rankSum ranks concat(x*scale - d, y*scale) with ties averaged (ranks are 1-based) and
// returns the sum of x's ranks, the tie term T = sum over tie groups of t^3 - t, and
// whether every point is in one tie group.
//
// xs and ys must be sorted ascending. Shifting and scaling keep x sorted, so one merge of
// the two sorted sides ranks them in O(len(x)+len(y)) without sorting or allocating; the
// root finder evaluates this many times per classification. scale must be a power of two,
// so scaling is exact and creates or breaks no ties.
func rankSum(xs, ys []float64, scale, d float64) (rx, ties float64, allTied bool) {
	i, j := 0, 0
	pos := 0.0
	groups := 0
	for i < len(xs) || j < len(ys) {
		var v float64
		switch {
		case j == len(ys):
			v = xs[i]*scale - d
		case i == len(xs):
			v = ys[j] * scale
		default:
			v = min(xs[i]*scale-d, ys[j]*scale)
		}
		tx := 0
		for i < len(xs) && xs[i]*scale-d == v {
			i++
			tx++
		}
		ty := 0
		for j < len(ys) && ys[j]*scale == v {
			j++
			ty++
		}
		t := float64(tx + ty)
		// The group takes ranks pos+1 .. pos+t; each member gets their mean.
		rx += float64(tx) * (pos + (t+1)/2)
		ties += t*t*t - t
		pos += t
		groups++
	}
	return rx, ties, groups == 1
}
