package metricsq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

const (
	// DefaultMaxConcurrentPerTarget bounds in-flight queries per target when
	// ExecutorOptions leaves it unset.
	DefaultMaxConcurrentPerTarget = 8
	// DefaultCacheTTL is how long a finished result is shared when ExecutorOptions leaves
	// it unset. It should cover the spread of arrivals for one tick, so about one interval.
	DefaultCacheTTL = 30 * time.Second
)

// Values of the outcome label.
const (
	outcomeSuccess  = "success"
	outcomeError    = "error"
	outcomeTimeout  = "timeout"
	outcomeCanceled = "canceled"
)

// Range asks for a range query over [Start, End] at Step resolution.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// Request is one query as runs ask for it. Requests with the same Provider, Target,
// Query, Tick and Range are the same question and get the same answer.
type Request struct {
	// Provider names the provider kind ("prometheus", "web") for metrics labels.
	Provider string
	// Target identifies the endpoint and the identity used to reach it (address plus a
	// hash of auth and headers): two tenants of one Mimir are different targets.
	Target string
	// Query is the rendered query text.
	Query string
	// Tick is the evaluation time, aligned by the caller to the metric interval. A zero
	// Tick means "now", which differs for every caller, so it is never shared.
	Tick time.Time
	// Range makes this a range query; nil for an instant query.
	Range *Range
}

// Response is what a query returned. Value may be shared by many callers and must be
// treated as read-only.
type Response struct {
	Value    model.Value
	Warnings []string
	Infos    []string
}

// QueryFunc performs the real call. It receives a context that is cancelled only when
// every caller waiting for it has gone, so it must apply its own timeout.
type QueryFunc func(ctx context.Context, req Request) (Response, error)

// ExecutorOptions tunes an Executor; zero values select the defaults.
type ExecutorOptions struct {
	// MaxConcurrentPerTarget bounds queries in flight per Target.
	MaxConcurrentPerTarget int
	// CacheTTL is how long a finished result keeps answering identical requests.
	CacheTTL time.Duration
}

// Executor runs the queries of every analysis run in the process. Identical requests in
// flight or finished within CacheTTL share one call, so thousands of runs measuring the
// same query at the same tick cost Prometheus one query; each Target has a bounded
// number of calls in flight; every call is timed.
type Executor struct {
	maxPerTarget int
	ttl          time.Duration
	now          func() time.Time

	mu        sync.Mutex
	calls     map[callKey]*call
	slots     map[string]chan struct{}
	lastSweep time.Time

	duration     *prometheus.HistogramVec
	total        *prometheus.CounterVec
	deduplicated *prometheus.CounterVec
}

type callKey struct {
	provider, target, query string
	tick, start, end        int64
	step                    time.Duration
}

type call struct {
	done     chan struct{}
	cancel   context.CancelFunc
	waiters  int
	finished bool
	expires  time.Time
	resp     Response
	err      error
}

// NewExecutor builds an Executor and registers its metrics on reg; a nil reg keeps them
// unregistered (for the CLI and tests).
func NewExecutor(reg prometheus.Registerer, opts ExecutorOptions) (*Executor, error) {
	if opts.MaxConcurrentPerTarget <= 0 {
		opts.MaxConcurrentPerTarget = DefaultMaxConcurrentPerTarget
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	e := &Executor{
		maxPerTarget: opts.MaxConcurrentPerTarget,
		ttl:          opts.CacheTTL,
		now:          time.Now,
		calls:        map[callKey]*call{},
		slots:        map[string]chan struct{}{},
		// The target stays out of the labels: it carries a config hash and would grow
		// without bound as secrets rotate.
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promgate_provider_query_duration_seconds",
			Help:    "Duration of provider queries actually sent, by provider and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"provider", "outcome"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_provider_queries_total",
			Help: "Provider queries actually sent, by provider and outcome.",
		}, []string{"provider", "outcome"}),
		deduplicated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_provider_queries_deduplicated_total",
			Help: "Requests answered by a query already in flight or just finished, by provider.",
		}, []string{"provider"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.duration, e.total, e.deduplicated} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering query executor metrics: %w", err)
			}
		}
	}
	return e, nil
}

// Execute answers req, calling fn only when no identical request is in flight or cached.
// If ctx ends first, only this caller gives up: the shared call goes on for the others
// and is cancelled once nobody waits for it.
func (e *Executor) Execute(ctx context.Context, req Request, fn QueryFunc) (Response, error) {
	if req.Tick.IsZero() {
		return e.call(ctx, req, fn)
	}
	k := keyOf(req)
	now := e.now()

	e.mu.Lock()
	c, ok := e.calls[k]
	if ok && c.finished && !now.Before(c.expires) {
		delete(e.calls, k)
		ok = false
	}
	if ok {
		e.deduplicated.WithLabelValues(req.Provider).Inc()
		if c.finished {
			e.mu.Unlock()
			return c.resp, c.err
		}
		c.waiters++
	} else {
		e.sweepLocked(now)
		c = e.startLocked(ctx, k, req, fn)
	}
	e.mu.Unlock()

	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		e.leave(k, c)
		return Response{}, fmt.Errorf("waiting for query: %w", ctx.Err())
	}
}

func keyOf(req Request) callKey {
	k := callKey{provider: req.Provider, target: req.Target, query: req.Query, tick: req.Tick.UnixNano()}
	if req.Range != nil {
		k.start, k.end, k.step = req.Range.Start.UnixNano(), req.Range.End.UnixNano(), req.Range.Step
	}
	return k
}

// startLocked launches the shared call. Its context keeps the first caller's values but
// not its cancellation, which belongs to that caller alone.
func (e *Executor) startLocked(ctx context.Context, k callKey, req Request, fn QueryFunc) *call {
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &call{done: make(chan struct{}), cancel: cancel, waiters: 1}
	e.calls[k] = c
	go func() {
		resp, err := e.call(callCtx, req, fn)
		cancel()
		e.mu.Lock()
		c.resp, c.err, c.finished = resp, err, true
		c.expires = e.now().Add(e.ttl)
		close(c.done)
		e.mu.Unlock()
	}()
	return c
}

// leave drops one waiter; the last one out cancels the call and forgets it, so a later
// request starts afresh instead of inheriting a cancelled result.
func (e *Executor) leave(k callKey, c *call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.waiters--
	if c.waiters > 0 || c.finished {
		return
	}
	c.cancel()
	if e.calls[k] == c {
		delete(e.calls, k)
	}
}

// sweepLocked drops expired results at most once per TTL, which bounds the cache to
// about the distinct requests of one TTL.
func (e *Executor) sweepLocked(now time.Time) {
	if now.Sub(e.lastSweep) < e.ttl {
		return
	}
	e.lastSweep = now
	for k, c := range e.calls {
		if c.finished && !now.Before(c.expires) {
			delete(e.calls, k)
		}
	}
}

// call takes a slot on the target, then runs and times fn.
func (e *Executor) call(ctx context.Context, req Request, fn QueryFunc) (resp Response, err error) {
	slots := e.slotsFor(req.Target)
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return Response{}, fmt.Errorf("waiting for a query slot: %w", ctx.Err())
	}
	defer func() { <-slots }()

	start := time.Now()
	defer func() {
		// A bug in one provider must cost one measurement, not the controller.
		if r := recover(); r != nil {
			err = fmt.Errorf("query panicked: %v", r)
		}
		o := outcome(err)
		e.duration.WithLabelValues(req.Provider, o).Observe(time.Since(start).Seconds())
		e.total.WithLabelValues(req.Provider, o).Inc()
	}()
	return fn(ctx, req)
}

func (e *Executor) slotsFor(target string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.slots[target]
	if !ok {
		s = make(chan struct{}, e.maxPerTarget)
		e.slots[target] = s
	}
	return s
}

func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	default:
		return outcomeError
	}
}
