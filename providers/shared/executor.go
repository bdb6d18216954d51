// Package shared runs the provider calls of every analysis run in the process through one
// Executor, which makes each providers.Source a providers.Provider: identical requests in
// flight or just finished share one call, so thousands of runs measuring the same query
// at the same tick cost Prometheus one query; each target has a bounded number of calls
// in flight; every call is timed; and each answer is shaped once for all who share it.
package shared

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
)

const (
	// DefaultMaxConcurrentPerTarget bounds calls in flight per target when Options leaves
	// it unset.
	DefaultMaxConcurrentPerTarget = 8
	// DefaultCacheTTL is how long a finished answer is shared when Options leaves it
	// unset. It should cover the spread of arrivals for one tick, so about one interval.
	DefaultCacheTTL = 30 * time.Second
)

// Values of the outcome label.
const (
	outcomeSuccess  = "success"
	outcomeError    = "error"
	outcomeTimeout  = "timeout"
	outcomeCanceled = "canceled"
)

// Options tunes an Executor; zero values select the defaults.
type Options struct {
	// MaxConcurrentPerTarget bounds calls in flight per target.
	MaxConcurrentPerTarget int
	// CacheTTL is how long a finished answer keeps answering identical requests.
	CacheTTL time.Duration
}

// Executor shares, bounds, times and shapes the calls of every Source it wraps.
type Executor struct {
	maxPerTarget int
	ttl          time.Duration

	mu        sync.Mutex
	calls     map[callKey]*call
	targets   map[string]*target
	lastSweep time.Time

	duration     *prometheus.HistogramVec
	total        *prometheus.CounterVec
	deduplicated *prometheus.CounterVec
}

// callKey is a question as Sources describe it, at one tick: the same key gets the same
// answer.
type callKey struct {
	kind, target, query string
	tick                int64
}

type call struct {
	done     chan struct{}
	cancel   context.CancelFunc
	waiters  int
	finished bool
	expires  time.Time
	m        providers.Measurement
	err      error
}

// target holds the call slots of one target while anyone uses them.
type target struct {
	slots chan struct{}
	// users counts the calls waiting for or holding a slot; the last one out drops the
	// target, so targets no longer measured cost nothing.
	users int
}

// NewExecutor builds an Executor and registers its metrics on reg; a nil reg keeps them
// unregistered (for the CLI and tests).
func NewExecutor(reg prometheus.Registerer, opts Options) (*Executor, error) {
	if opts.MaxConcurrentPerTarget <= 0 {
		opts.MaxConcurrentPerTarget = DefaultMaxConcurrentPerTarget
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	e := &Executor{
		maxPerTarget: opts.MaxConcurrentPerTarget,
		ttl:          opts.CacheTTL,
		calls:        map[callKey]*call{},
		targets:      map[string]*target{},
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

// Provider returns src as a Provider whose measurements go through e.
func (e *Executor) Provider(src providers.Source) providers.Provider {
	return &provider{exec: e, src: src, desc: src.Describe()}
}

type provider struct {
	exec *Executor
	src  providers.Source
	desc providers.Description
}

// Measure answers from a call in flight or just finished for the same question and tick,
// or makes the call.
func (p *provider) Measure(ctx context.Context, q providers.Query) (providers.Measurement, error) {
	m, err := p.exec.measure(ctx, p.src, p.desc, q)
	if err != nil {
		return providers.Measurement{}, fmt.Errorf("querying %s: %w", p.desc.Shown, err)
	}
	return m, nil
}

// measure calls src only when no identical request is in flight or cached. If ctx ends
// first, only this caller gives up: the shared call goes on for the others and is
// cancelled once nobody waits for it.
func (e *Executor) measure(ctx context.Context, src providers.Source, desc providers.Description, q providers.Query) (providers.Measurement, error) {
	if q.Tick.IsZero() || desc.Unshared {
		// "Now" differs for every caller, so it is never shared.
		return e.answer(ctx, src, desc, q)
	}
	k := callKey{kind: desc.Kind, target: desc.Target, query: desc.Query, tick: q.Tick.UnixNano()}
	now := time.Now()

	e.mu.Lock()
	c, ok := e.calls[k]
	if ok && c.finished && !now.Before(c.expires) {
		delete(e.calls, k)
		ok = false
	}
	if ok {
		e.deduplicated.WithLabelValues(desc.Kind).Inc()
		if c.finished {
			e.mu.Unlock()
			return c.m, c.err
		}
		c.waiters++
	} else {
		e.sweepLocked(now)
		c = e.startLocked(ctx, k, src, desc, q)
	}
	e.mu.Unlock()

	select {
	case <-c.done:
		return c.m, c.err
	case <-ctx.Done():
		e.leave(k, c)
		return providers.Measurement{}, fmt.Errorf("waiting for query: %w", ctx.Err())
	}
}

// startLocked launches the shared call. Its context keeps the first caller's values but
// not its cancellation, which belongs to that caller alone.
func (e *Executor) startLocked(ctx context.Context, k callKey, src providers.Source, desc providers.Description, q providers.Query) *call {
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &call{done: make(chan struct{}), cancel: cancel, waiters: 1}
	e.calls[k] = c
	go func() {
		m, err := e.answer(callCtx, src, desc, q)
		cancel()
		e.mu.Lock()
		c.m, c.err, c.finished = m, err, true
		c.expires = time.Now().Add(e.ttl)
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

// sweepLocked drops expired answers at most once per TTL, which bounds the cache to
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

// answer fetches and shapes: shaping here, inside the shared call, does it once for
// every caller sharing the answer.
func (e *Executor) answer(ctx context.Context, src providers.Source, desc providers.Description, q providers.Query) (providers.Measurement, error) {
	resp, err := e.fetch(ctx, src, desc, q)
	if err != nil {
		return providers.Measurement{}, err
	}
	m := providers.Measurement{Verdict: resp.Verdict, Warnings: resp.Warnings, Infos: resp.Infos}
	switch {
	case resp.Verdict != nil && resp.Value == nil:
		// A verdict with no numbers (a Job's outcome) has nothing to shape; the zero
		// Result is no numbers, and not no data, which is not what the verdict says.
	case resp.Document != nil:
		m.Result, err = metricsq.ShapeDocument(resp.Value, *resp.Document)
	default:
		m.Result, err = metricsq.Shape(resp.Value)
	}
	if err != nil {
		return providers.Measurement{}, err
	}
	return m, nil
}

// fetch takes a slot on the target, then calls and times src.
func (e *Executor) fetch(ctx context.Context, src providers.Source, desc providers.Description, q providers.Query) (resp providers.Response, err error) {
	release, err := e.acquire(ctx, desc.Target)
	if err != nil {
		return providers.Response{}, err
	}
	defer release()

	start := time.Now()
	defer func() {
		// A bug in one provider must cost one measurement, not the controller.
		if r := recover(); r != nil {
			err = fmt.Errorf("query panicked: %v", r)
		}
		o := outcome(err)
		e.duration.WithLabelValues(desc.Kind, o).Observe(time.Since(start).Seconds())
		e.total.WithLabelValues(desc.Kind, o).Inc()
	}()
	return src.Fetch(ctx, q)
}

// acquire waits for a slot on the named target; release gives it back.
func (e *Executor) acquire(ctx context.Context, name string) (release func(), err error) {
	e.mu.Lock()
	t, ok := e.targets[name]
	if !ok {
		t = &target{slots: make(chan struct{}, e.maxPerTarget)}
		e.targets[name] = t
	}
	t.users++
	e.mu.Unlock()

	select {
	case t.slots <- struct{}{}:
		return func() {
			<-t.slots
			e.done(name, t)
		}, nil
	case <-ctx.Done():
		e.done(name, t)
		return nil, fmt.Errorf("waiting for a query slot: %w", ctx.Err())
	}
}

// done drops a user of t, and t itself with its last user.
func (e *Executor) done(name string, t *target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t.users--
	if t.users == 0 {
		delete(e.targets, name)
	}
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
