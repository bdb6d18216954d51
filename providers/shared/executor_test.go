package shared

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
)

var tick0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newTestExecutor(t *testing.T, opts Options) (*Executor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := NewExecutor(reg, opts)
	require.NoError(t, err)
	return e, reg
}

type fetchFunc func(ctx context.Context, q providers.Query) (providers.Response, error)

// fakeSource describes itself as desc and answers with fetch.
type fakeSource struct {
	desc  providers.Description
	fetch fetchFunc
}

func (s *fakeSource) Describe() providers.Description { return s.desc }

func (s *fakeSource) Fetch(ctx context.Context, q providers.Query) (providers.Response, error) {
	return s.fetch(ctx, q)
}

func source(query string, fetch fetchFunc) *fakeSource {
	return &fakeSource{desc: providers.Description{Kind: "prometheus", Target: "http://prom:9090#abc", Query: query, Shown: "http://prom:9090"}, fetch: fetch}
}

func measure(ctx context.Context, e *Executor, src providers.Source, tick time.Time) (providers.Measurement, error) {
	return e.Provider(src).Measure(ctx, providers.Query{Tick: tick})
}

// counting counts calls, blocks until release is closed, and answers with the call's
// sequence number.
func counting(calls *atomic.Int32, release <-chan struct{}) fetchFunc {
	return func(ctx context.Context, _ providers.Query) (providers.Response, error) {
		n := calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return providers.Response{}, ctx.Err()
		}
		return providers.Response{Value: &model.Scalar{Value: model.SampleValue(n)}, Warnings: []string{"w"}}, nil
	}
}

func TestExecutorDeduplicatesConcurrentIdenticalRequests(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	var calls atomic.Int32
	release := make(chan struct{})
	src := source("up", counting(&calls, release))

	const n = 200
	var wg sync.WaitGroup
	results := make([]providers.Measurement, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = measure(context.Background(), e, src, tick0) })
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
		assert.Same(t, &results[0].Result.Values[0], &results[i].Result.Values[0], "shaped once, shared by all")
		assert.Equal(t, []string{"w"}, results[i].Warnings)
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "success")))
}

func TestExecutorDistinctKeysAreDistinctCalls(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	var calls atomic.Int32
	release := make(chan struct{})
	close(release)
	fetch := counting(&calls, release)

	ticks := []time.Time{tick0, tick0.Add(10 * time.Second), tick0.Add(20 * time.Second)}
	var wg sync.WaitGroup
	for _, tick := range ticks {
		for range 50 {
			wg.Go(func() {
				_, err := measure(context.Background(), e, source("up", fetch), tick)
				assert.NoError(t, err)
			})
		}
	}
	wg.Wait()
	assert.Equal(t, int32(len(ticks)), calls.Load(), "one call per tick")

	// Query, target and kind are part of the key too.
	others := []providers.Description{
		{Kind: "prometheus", Target: "http://prom:9090#abc", Query: "down"},
		{Kind: "prometheus", Target: "other", Query: "up"},
		{Kind: "web", Target: "http://prom:9090#abc", Query: "up"},
	}
	for _, d := range others {
		_, err := measure(context.Background(), e, &fakeSource{desc: d, fetch: fetch}, tick0)
		require.NoError(t, err)
	}
	assert.Equal(t, int32(len(ticks)+len(others)), calls.Load())
}

func TestExecutorBoundsConcurrencyPerTarget(t *testing.T) {
	const bound = 3
	e, _ := newTestExecutor(t, Options{MaxConcurrentPerTarget: bound})
	type gauge struct{ current, peak atomic.Int32 }
	targets := map[string]*gauge{"a": {}, "b": {}}
	var overall gauge
	track := func(g *gauge) func() {
		c := g.current.Add(1)
		for p := g.peak.Load(); c > p && !g.peak.CompareAndSwap(p, c); p = g.peak.Load() {
		}
		return func() { g.current.Add(-1) }
	}

	var wg sync.WaitGroup
	for target, g := range targets {
		for i := range 30 {
			wg.Go(func() {
				src := &fakeSource{
					desc: providers.Description{Kind: "prometheus", Target: target, Query: fmt.Sprintf("q%d", i)},
					fetch: func(context.Context, providers.Query) (providers.Response, error) {
						defer track(g)()
						defer track(&overall)()
						time.Sleep(5 * time.Millisecond)
						return providers.Response{Value: model.Vector{}}, nil
					},
				}
				_, err := measure(context.Background(), e, src, tick0)
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

func TestExecutorForgetsIdleTargets(t *testing.T) {
	e, _ := newTestExecutor(t, Options{MaxConcurrentPerTarget: 1})
	targets := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.targets)
	}
	started, release := make(chan struct{}), make(chan struct{})
	blocking := source("slow", func(context.Context, providers.Query) (providers.Response, error) {
		close(started)
		<-release
		return providers.Response{Value: model.Vector{}}, nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := measure(context.Background(), e, blocking, tick0)
		done <- err
	}()
	<-started
	assert.Equal(t, 1, targets(), "a target in use keeps its slots")

	// A request that gives up while waiting for the only slot leaves no trace.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := measure(ctx, e, source("queued", func(context.Context, providers.Query) (providers.Response, error) {
		return providers.Response{}, errors.New("never called")
	}), tick0)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	close(release)
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return targets() == 0 }, 5*time.Second, time.Millisecond, "the last request out drops its target")
}

func TestExecutorWaiterCancellationDoesNotCancelSharedCall(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	started := make(chan struct{})
	release := make(chan struct{})
	var fetchCtxErr atomic.Value
	src := source("up", func(ctx context.Context, _ providers.Query) (providers.Response, error) {
		close(started)
		<-release
		fetchCtxErr.Store(fmt.Sprint(ctx.Err()))
		return providers.Response{Value: &model.Scalar{Value: 1}}, nil
	})

	ctx1, cancel1 := context.WithCancel(context.Background())
	err1 := make(chan error, 1)
	go func() {
		_, err := measure(ctx1, e, src, tick0)
		err1 <- err
	}()
	<-started
	res2 := make(chan providers.Measurement, 1)
	go func() {
		m, err := measure(context.Background(), e, src, tick0)
		assert.NoError(t, err)
		res2 <- m
	}()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.deduplicated.WithLabelValues("prometheus")) == 1
	}, 5*time.Second, time.Millisecond)

	cancel1()
	err := <-err1
	require.ErrorIs(t, err, context.Canceled)
	close(release)
	m := <-res2
	assert.Equal(t, []float64{1}, m.Result.Values)
	assert.Equal(t, "<nil>", fetchCtxErr.Load(), "the shared call's context stayed alive")
}

func TestExecutorLastWaiterLeavingCancelsCall(t *testing.T) {
	e, reg := newTestExecutor(t, Options{})
	var calls atomic.Int32
	fetchDone := make(chan error, 1)
	blocking := source("up", func(ctx context.Context, _ providers.Query) (providers.Response, error) {
		calls.Add(1)
		<-ctx.Done()
		fetchDone <- ctx.Err()
		return providers.Response{}, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := measure(ctx, e, blocking, tick0)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, <-fetchDone, context.Canceled, "nobody waits, so the call stops")

	// A later request starts afresh rather than inheriting the cancelled result.
	m, err := measure(context.Background(), e, source("up", func(context.Context, providers.Query) (providers.Response, error) {
		calls.Add(1)
		return providers.Response{Value: &model.Scalar{Value: 2}}, nil
	}), tick0)
	require.NoError(t, err)
	assert.Equal(t, []float64{2}, m.Result.Values)
	assert.Equal(t, int32(2), calls.Load())
	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(reg, "promgate_provider_queries_total")
		return err == nil && n == 2 // outcome="canceled" and outcome="success"
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "canceled")))
}

func TestExecutorCachesFinishedResultsForTTL(t *testing.T) {
	// synctest's clock moves only when every goroutine of the test waits, so the TTL is
	// exact however slow the machine.
	synctest.Test(t, func(t *testing.T) {
		e, _ := newTestExecutor(t, Options{CacheTTL: 10 * time.Second})
		var calls atomic.Int32
		fail := errors.New("prometheus down")
		fetch := func(ctx context.Context, _ providers.Query) (providers.Response, error) {
			calls.Add(1)
			return providers.Response{Value: &model.Scalar{Value: 1}}, nil
		}
		failing := source("failing", func(context.Context, providers.Query) (providers.Response, error) {
			calls.Add(1)
			return providers.Response{}, fail
		})
		for range 3 {
			_, err := measure(context.Background(), e, source("up", fetch), tick0)
			require.NoError(t, err)
			_, err = measure(context.Background(), e, failing, tick0)
			require.ErrorIs(t, err, fail, "errors are shared too, sparing a struggling Prometheus")
			time.Sleep(3 * time.Second)
		}
		assert.Equal(t, int32(2), calls.Load())

		time.Sleep(2 * time.Second) // 11 s after the first call: expired
		_, err := measure(context.Background(), e, source("up", fetch), tick0)
		require.NoError(t, err)
		assert.Equal(t, int32(3), calls.Load())

		// Expired entries are swept, so the cache does not grow with ticks.
		time.Sleep(30 * time.Second)
		_, err = measure(context.Background(), e, source("up", fetch), tick0.Add(time.Minute))
		require.NoError(t, err)
		e.mu.Lock()
		assert.Len(t, e.calls, 1)
		e.mu.Unlock()
	})
}

func TestExecutorZeroTickIsNeverShared(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	var calls atomic.Int32
	release := make(chan struct{})
	close(release)
	for range 3 {
		_, err := measure(context.Background(), e, source("up", counting(&calls, release)), time.Time{})
		require.NoError(t, err)
	}
	assert.Equal(t, int32(3), calls.Load())
}

func TestExecutorShapesAndNamesTheSource(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	m, err := measure(context.Background(), e, source("up", func(context.Context, providers.Query) (providers.Response, error) {
		return providers.Response{Value: model.Vector{{Metric: model.Metric{"pod": "a"}, Value: 0.5}}, Infos: []string{"i"}}, nil
	}), tick0)
	require.NoError(t, err)
	assert.Equal(t, "[0.5]", m.Result.String())
	assert.Equal(t, map[string]string{"pod": "a"}, m.Result.Series[0].Labels)
	assert.Equal(t, []string{"i"}, m.Infos)

	_, err = measure(context.Background(), e, source("text", func(context.Context, providers.Query) (providers.Response, error) {
		return providers.Response{Value: &model.String{Value: "ok"}}, nil
	}), tick0)
	assert.EqualError(t, err, `querying http://prom:9090: string result "ok" is not a number`)
}

func TestExecutorOutcomesAndTiming(t *testing.T) {
	e, reg := newTestExecutor(t, Options{})
	fetches := map[string]fetchFunc{
		"ok": func(context.Context, providers.Query) (providers.Response, error) { return providers.Response{}, nil },
		"error": func(context.Context, providers.Query) (providers.Response, error) {
			return providers.Response{}, errors.New("boom")
		},
		"timeout": func(context.Context, providers.Query) (providers.Response, error) {
			return providers.Response{}, fmt.Errorf("x: %w", context.DeadlineExceeded)
		},
		"panic": func(context.Context, providers.Query) (providers.Response, error) { panic("bug") },
	}
	for q, fetch := range fetches {
		_, _ = measure(context.Background(), e, source(q, fetch), tick0)
	}
	_, err := measure(context.Background(), e, source("panic", fetches["panic"]), tick0.Add(time.Second))
	assert.EqualError(t, err, "querying http://prom:9090: query panicked: bug")

	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "success")))
	assert.Equal(t, 3.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "error")))
	assert.Equal(t, 1.0, testutil.ToFloat64(e.total.WithLabelValues("prometheus", "timeout")))
	n, err := testutil.GatherAndCount(reg, "promgate_provider_query_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "one histogram per provider and outcome")
}

func TestNewExecutorRegistrationConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := NewExecutor(reg, Options{})
	require.NoError(t, err)
	_, err = NewExecutor(reg, Options{})
	require.ErrorContains(t, err, "registering query executor metrics")

	e, err := NewExecutor(nil, Options{})
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxConcurrentPerTarget, e.maxPerTarget)
	assert.Equal(t, DefaultCacheTTL, e.ttl)
}

func TestExecutorNeverSharesUnsharedSources(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	var seqs []int32
	src := source("job", func(_ context.Context, q providers.Query) (providers.Response, error) {
		seqs = append(seqs, q.Seq)
		return providers.Response{Verdict: &providers.Verdict{Phase: "Running", RetryAfter: time.Second}}, nil
	})
	src.desc.Unshared = true
	tick := time.Unix(1000, 0)
	for range 3 {
		m, err := e.Provider(src).Measure(context.Background(), providers.Query{Tick: tick, Seq: 4})
		require.NoError(t, err)
		require.NotNil(t, m.Verdict, "a verdict is passed on as it is")
		assert.Equal(t, time.Second, m.Verdict.RetryAfter)
	}
	assert.Equal(t, []int32{4, 4, 4}, seqs, "every ask is a call of its own, at the same tick too")
}

func TestExecutorShapesDocuments(t *testing.T) {
	e, _ := newTestExecutor(t, Options{})
	doc := map[string]any{"ok": true}
	m, err := measure(context.Background(), e, source("web", func(context.Context, providers.Query) (providers.Response, error) {
		return providers.Response{Document: &metricsq.Document{Value: doc}}, nil
	}), time.Unix(1000, 0))
	require.NoError(t, err)
	require.NotNil(t, m.Result.Document)
	assert.Equal(t, doc, m.Result.Document.Value)
	assert.False(t, m.Result.NoData)
	assert.Equal(t, `{"ok":true}`, m.Result.String())
}
