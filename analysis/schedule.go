package analysis

import "time"

// maxGranularity caps how far a measurement may wait for a shared tick.
const maxGranularity = 10 * time.Second

// granularity is the grid measurement ticks are aligned to. Runs that measure the same
// query on the same grid point share one Prometheus call, so a thousand runs at a 10 s
// interval cost one query per distinct query every 10 s. The grid divides the interval so
// that aligned measurements never drift from it, and stays at most 10 s so a long interval
// does not delay the first measurement by much.
func granularity(interval time.Duration) time.Duration {
	if interval <= 0 {
		return time.Second
	}
	if interval <= maxGranularity {
		return interval
	}
	if interval%time.Millisecond != 0 {
		return interval
	}
	ms := int64(interval / time.Millisecond)
	for g := int64(maxGranularity / time.Millisecond); g > 1; g-- {
		if ms%g == 0 {
			return time.Duration(g) * time.Millisecond
		}
	}
	return time.Millisecond
}

// alignUp returns the first grid point at or after t.
func alignUp(t time.Time, g time.Duration) time.Time {
	down := t.Truncate(g)
	if down.Equal(t) {
		return t
	}
	return down.Add(g)
}

// nextTick is when a metric's next measurement is due and the evaluation time it uses:
// the first after the initial delay, then one interval after the previous tick, always on
// the grid.
func nextTick(startedAt time.Time, initialDelay, interval time.Duration, lastTick *time.Time) time.Time {
	g := granularity(interval)
	if lastTick == nil {
		return alignUp(startedAt.Add(initialDelay), g)
	}
	return alignUp(lastTick.Add(interval), g)
}
