package metricsq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tick0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newTestExecutor(t *testing.T, opts ExecutorOptions) (*Executor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := NewExecutor(reg, opts)
	require.NoError(t, err)
	return e, reg
}

func req(query string, tick time.Time) Request {
	return Request{Provider: "prometheus", Target: "http://prom:9090#abc", Query: query, Tick: tick}
}

// countingFn counts calls, blocks until release is closed, and answers with the call's
// sequence number.
func countingFn(calls *atomic.Int32, release <-chan struct{}) QueryFunc {
	return func(ctx context.Context, r Request) (Response, error) {
		n := calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return Response{}, ctx.Err()
		}
		return Response{Value: &model.Scalar{Value: model.SampleValue(n)}, Warnings: []string{"w"}}, nil
	}
}

func TestExecutorDeduplicatesConcurrentIdenticalRequests(t *testing.T) {
	e, _ := newTestExecutor(t, ExecutorOptions{})
	var calls atomic.Int32
	release := make(chan struct{})
	fn := countingFn(&calls, release)

	const n = 200
	var wg sync.WaitGroup
	results := make([]Response, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = e.Execute(context.Background(), req("up", tick0), fn) })
	}
	// Release only once every caller has joined the one call in flight.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.deduplicated.WithLabelValues("prometheus")) == n-1
	}, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()

	assert.Equal(t, int32(1), calls.Load())
	for i := range n {
		require.NoError(t, errs[i])
		assert.Same(t, results[0].Value, results[i].Value)
		assert.Equal(t, []string{"w"}, results[i].Warnings)
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "success")))
}

func TestExecutorDistinctKeysAreDistinctCalls(t *testing.T) {
	e, _ := newTestExecutor(t, ExecutorOptions{})
	var calls atomic.Int32
	release := make(chan struct{})
	close(release)
	fn := countingFn(&calls, release)

	ticks := []time.Time{tick0, tick0.Add(10 * time.Second), tick0.Add(20 * time.Second)}
	var wg sync.WaitGroup
	for _, tick := range ticks {
		for range 50 {
			wg.Go(func() {
				_, err := e.Execute(context.Background(), req("up", tick), fn)
				assert.NoError(t, err)
			})
		}
	}
	wg.Wait()
	assert.Equal(t, int32(len(ticks)), calls.Load(), "one call per tick")

	// Query, target, provider and range are part of the key too.
	others := []Request{
		req("down", tick0),
		{Provider: "prometheus", Target: "other", Query: "up", Tick: tick0},
		{Provider: "web", Target: "http://prom:9090#abc", Query: "up", Tick: tick0},
		{Provider: "prometheus", Target: "http://prom:9090#abc", Query: "up", Tick: tick0, Range: &Range{Start: tick0.Add(-time.Minute), End: tick0, Step: time.Second}},
	}
	for _, r := range others {
		_, err := e.Execute(context.Background(), r, fn)
		require.NoError(t, err)
	}
	assert.Equal(t, int32(len(ticks)+len(others)), calls.Load())
}

func TestExecutorBoundsConcurrencyPerTarget(t *testing.T) {
	const bound = 3
	e, _ := newTestExecutor(t, ExecutorOptions{MaxConcurrentPerTarget: bound})
	type gauge struct{ current, peak atomic.Int32 }
	targets := map[string]*gauge{"a": {}, "b": {}}
	var overall gauge
	track := func(g *gauge) func() {
		c := g.current.Add(1)
		for p := g.peak.Load(); c > p && !g.peak.CompareAndSwap(p, c); p = g.peak.Load() {
		}
		return func() { g.current.Add(-1) }
	}
	fn := func(ctx context.Context, r Request) (Response, error) {
		defer track(targets[r.Target])()
		defer track(&overall)()
		time.Sleep(5 * time.Millisecond)
		return Response{Value: model.Vector{}}, nil
	}

	var wg sync.WaitGroup
	for target := range targets {
		for i := range 30 {
			wg.Go(func() {
				r := Request{Provider: "prometheus", Target: target, Query: fmt.Sprintf("q%d", i), Tick: tick0}
				_, err := e.Execute(context.Background(), r, fn)
				assert.NoError(t, err)
			})
		}
	}
	wg.Wait()
	for name, g := range targets {
		assert.Equal(t, int32(bound), g.peak.Load(), "target %s: bound reached, never exceeded", name)
	}
	assert.Greater(t, overall.peak.Load(), int32(bound), "targets do not share one bound")
}

func TestExecutorWaiterCancellationDoesNotCancelSharedCall(t *testing.T) {
	e, _ := newTestExecutor(t, ExecutorOptions{})
	started := make(chan struct{})
	release := make(chan struct{})
	var fnCtxErr atomic.Value
	fn := func(ctx context.Context, r Request) (Response, error) {
		close(started)
		<-release
		fnCtxErr.Store(fmt.Sprint(ctx.Err()))
		return Response{Value: &model.Scalar{Value: 1}}, nil
	}

	ctx1, cancel1 := context.WithCancel(context.Background())
	err1 := make(chan error, 1)
	go func() {
		_, err := e.Execute(ctx1, req("up", tick0), fn)
		err1 <- err
	}()
	<-started
	res2 := make(chan Response, 1)
	go func() {
		r, err := e.Execute(context.Background(), req("up", tick0), fn)
		assert.NoError(t, err)
		res2 <- r
	}()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.deduplicated.WithLabelValues("prometheus")) == 1
	}, 5*time.Second, time.Millisecond)

	cancel1()
	err := <-err1
	require.ErrorIs(t, err, context.Canceled)
	close(release)
	r := <-res2
	assert.Equal(t, &model.Scalar{Value: 1}, r.Value)
	assert.Equal(t, "<nil>", fnCtxErr.Load(), "the shared call's context stayed alive")
}

func TestExecutorLastWaiterLeavingCancelsCall(t *testing.T) {
	e, reg := newTestExecutor(t, ExecutorOptions{})
	var calls atomic.Int32
	fnDone := make(chan error, 1)
	blocking := func(ctx context.Context, r Request) (Response, error) {
		calls.Add(1)
		<-ctx.Done()
		fnDone <- ctx.Err()
		return Response{}, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := e.Execute(ctx, req("up", tick0), blocking)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, <-fnDone, context.Canceled, "nobody waits, so the call stops")

	// A later request starts afresh rather than inheriting the cancelled result.
	r, err := e.Execute(context.Background(), req("up", tick0), func(context.Context, Request) (Response, error) {
		calls.Add(1)
		return Response{Value: &model.Scalar{Value: 2}}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, &model.Scalar{Value: 2}, r.Value)
	assert.Equal(t, int32(2), calls.Load())
	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "promgate_provider_queries_total")
		return err == nil && n == 2 // outcome="canceled" and outcome="success"
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "canceled")))
}

func TestExecutorCachesFinishedResultsForTTL(t *testing.T) {
	e, _ := newTestExecutor(t, ExecutorOptions{CacheTTL: 10 * time.Second})
	var mu sync.Mutex
	now := tick0
	e.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var calls atomic.Int32
	fail := errors.New("prometheus down")
	fn := func(ctx context.Context, r Request) (Response, error) {
		calls.Add(1)
		if r.Query == "failing" {
			return Response{}, fail
		}
		return Response{Value: &model.Scalar{Value: 1}}, nil
	}
	for range 3 {
		_, err := e.Execute(context.Background(), req("up", tick0), fn)
		require.NoError(t, err)
		_, err = e.Execute(context.Background(), req("failing", tick0), fn)
		require.ErrorIs(t, err, fail, "errors are shared too, sparing a struggling Prometheus")
		advance(3 * time.Second)
	}
	assert.Equal(t, int32(2), calls.Load())

	advance(2 * time.Second) // 11 s after the first call: expired
	_, err := e.Execute(context.Background(), req("up", tick0), fn)
	require.NoError(t, err)
	assert.Equal(t, int32(3), calls.Load())

	// Expired entries are swept, so the cache does not grow with ticks.
	advance(30 * time.Second)
	_, err = e.Execute(context.Background(), req("up", tick0.Add(time.Minute)), fn)
	require.NoError(t, err)
	e.mu.Lock()
	assert.Len(t, e.calls, 1)
	e.mu.Unlock()
}

func TestExecutorZeroTickIsNeverShared(t *testing.T) {
	e, _ := newTestExecutor(t, ExecutorOptions{})
	var calls atomic.Int32
	release := make(chan struct{})
	close(release)
	for range 3 {
		_, err := e.Execute(context.Background(), req("up", time.Time{}), countingFn(&calls, release))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(3), calls.Load())
}

func TestExecutorOutcomesAndTiming(t *testing.T) {
	e, reg := newTestExecutor(t, ExecutorOptions{})
	fns := map[string]QueryFunc{
		"ok":    func(context.Context, Request) (Response, error) { return Response{}, nil },
		"error": func(context.Context, Request) (Response, error) { return Response{}, errors.New("boom") },
		"timeout": func(context.Context, Request) (Response, error) {
			return Response{}, fmt.Errorf("x: %w", context.DeadlineExceeded)
		},
		"panic": func(context.Context, Request) (Response, error) { panic("bug") },
	}
	for q, fn := range fns {
		_, _ = e.Execute(context.Background(), req(q, tick0), fn)
	}
	_, err := e.Execute(context.Background(), req("panic", tick0.Add(time.Second)), fns["panic"])
	assert.EqualError(t, err, "query panicked: bug")

	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "success")))
	assert.Equal(t, 3.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "error")))
	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "timeout")))
	n, err := testutil.GatherAndCount(reg, "promgate_provider_query_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "one histogram per provider and outcome")
}

func TestNewExecutorRegistrationConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := NewExecutor(reg, ExecutorOptions{})
	require.NoError(t, err)
	_, err = NewExecutor(reg, ExecutorOptions{})
	require.ErrorContains(t, err, "registering query executor metrics")

	e, err := NewExecutor(nil, ExecutorOptions{})
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxConcurrentPerTarget, e.maxPerTarget)
	assert.Equal(t, DefaultCacheTTL, e.ttl)
}
