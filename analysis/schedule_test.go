package analysis

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestGranularityDividesTheInterval(t *testing.T) {
	for interval, want := range map[time.Duration]time.Duration{
		0:                        time.Second,
		5 * time.Second:          5 * time.Second,
		10 * time.Second:         10 * time.Second,
		15 * time.Second:         7500 * time.Millisecond,
		time.Minute:              10 * time.Second,
		45 * time.Second:         9 * time.Second,
		1500 * time.Millisecond:  1500 * time.Millisecond,
		11500 * time.Millisecond: 5750 * time.Millisecond,
	} {
		g := granularity(interval)
		assert.Equal(t, want, g, "interval %s", interval)
		if interval > 0 {
			assert.Zero(t, interval%g, "interval %s is a multiple of its grid", interval)
		}
	}
}

func TestNextTick(t *testing.T) {
	start := time.Date(2026, 11, 22, 1, 0, 3, 0, time.UTC)
	first := nextTick(start, 0, 10*time.Second, nil)
	assert.Equal(t, time.Date(2026, 11, 22, 1, 0, 10, 0, time.UTC), first, "the first tick is the next grid point")

	delayed := nextTick(start, 30*time.Second, 10*time.Second, nil)
	assert.Equal(t, time.Date(2026, 11, 22, 1, 0, 40, 0, time.UTC), delayed, "never before the initial delay has passed")

	second := nextTick(start, 0, 10*time.Second, &first)
	assert.Equal(t, first.Add(10*time.Second), second)

	long := nextTick(start, 0, time.Minute, nil)
	assert.Equal(t, time.Date(2026, 11, 22, 1, 0, 10, 0, time.UTC), long, "a long interval waits at most 10 s for its first tick")
	assert.Equal(t, long.Add(time.Minute), nextTick(start, 0, time.Minute, &long))

	onGrid := time.Date(2026, 11, 22, 1, 0, 20, 0, time.UTC)
	assert.Equal(t, onGrid, nextTick(onGrid, 0, 10*time.Second, nil), "a start on the grid measures at once")
}
