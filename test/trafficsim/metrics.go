package trafficsim

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/prometheus/client_golang/prometheus"
)

// epsilon absorbs floating-point error when whole requests are taken out of an
// accumulator, so 0.1+0.2+0.7 requests make one request now rather than on the next tick.
const epsilon = 1e-9

// durationBuckets are 1 ms to 4.8 s, each 10% above the one before, so that
// histogram_quantile interpolates a quantile of a smooth distribution to within a few
// percent, finer than the effect sizes a judge tells apart (coarser buckets put the p99 of
// a narrow distribution 10% off).
var durationBuckets = prometheus.ExponentialBuckets(0.001, 1.1, 90)

// metrics are the simulator's exported series and the fractions carried between ticks.
type metrics struct {
	requests   *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	readErrors prometheus.Counter
	problems   prometheus.Gauge

	// pending holds fractional requests per entry, backend and header/plain flow.
	pending map[flow]float64
	// pendingErrors holds fractional errors per entry and backend.
	pendingErrors map[target]float64
	// seed and noise draw each backend's latencies: one generator per entry and backend,
	// seeded by seed and the backend, so a run's latencies depend on nothing else.
	seed  uint64
	noise map[target]*rand.Rand
}

// target is a backend as reached from one entry point.
type target struct {
	entry   string
	backend Backend
}

// flow is the requests of a target that carry the entry's headers, or those that do not.
type flow struct {
	target
	header bool
}

func newMetrics(reg prometheus.Registerer, seed uint64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_sim_requests_total",
			Help: "Simulated requests by entry point (Kind/Name), Service, revision (pod-template-hash) and status code.",
		}, []string{"entry", "service", "revision", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promgate_sim_request_duration_seconds",
			Help:    "Duration of the simulated requests pods answered, by entry point, Service and revision.",
			Buckets: durationBuckets,
		}, []string{"entry", "service", "revision"}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgate_sim_read_errors_total",
			Help: "Ticks whose read of the objects failed; their requests followed the last objects read.",
		}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgate_sim_object_problems",
			Help: "Problems found in the objects on the last read (invalid annotations, unsupported references); each is logged once.",
		}),
		pending:       map[flow]float64{},
		pendingErrors: map[target]float64{},
		seed:          seed,
		noise:         map[target]*rand.Rand{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.durations, m.readErrors, m.problems} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// take removes the whole part of an accumulator.
func take(acc float64) (whole int, rest float64) {
	n := math.Floor(acc + epsilon)
	return int(n), acc - n
}

// emit counts the requests of seconds of traffic at rates (one per entry) through snap's
// splits, carrying fractions to the next call.
func (m *metrics) emit(w *world, snap Snapshot, entries []Entry, rates []float64, seconds float64) {
	liveFlows, liveTargets := map[flow]bool{}, map[target]bool{}
	for i, e := range entries {
		key := entryKey(e.Kind, e.Name)
		split := snap.Entries[key]
		requests := map[Backend]int{}
		for _, part := range []struct {
			header bool
			shares Shares
			weight float64
		}{{true, split.Header, e.HeaderShare}, {false, split.Plain, 1 - e.HeaderShare}} {
			if part.weight <= 0 {
				continue
			}
			for b, share := range part.shares {
				f := flow{target{key, b}, part.header}
				liveFlows[f] = true
				var n int
				n, m.pending[f] = take(m.pending[f] + rates[i]*seconds*part.weight*share)
				requests[b] += n
			}
		}
		for b, n := range requests {
			t := target{key, b}
			liveTargets[t] = true
			m.count(w, t, n)
		}
	}
	// Backends the routing left keep no fractions: a revision that comes back starts afresh.
	for f := range m.pending {
		if !liveFlows[f] {
			delete(m.pending, f)
		}
	}
	for t := range m.pendingErrors {
		if !liveTargets[t] {
			delete(m.pendingErrors, t)
		}
	}
	for t := range m.noise {
		if !liveTargets[t] {
			delete(m.noise, t)
		}
	}
}

// latencies is t's generator of latency noise, made on first use.
func (m *metrics) latencies(t target) *rand.Rand {
	if r, ok := m.noise[t]; ok {
		return r
	}
	h := fnv.New64a()
	for _, s := range []string{t.entry, t.backend.Service, t.backend.Revision} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	r := rand.New(rand.NewPCG(m.seed, h.Sum64()))
	m.noise[t] = r
	return r
}

// count records n requests of t. Series are touched even when n is 0, so an error ratio
// has a zero numerator instead of no data from the first scrape on.
func (m *metrics) count(w *world, t target, n int) {
	entry, b := t.entry, t.backend
	rev, ok := w.revision(b)
	switch {
	case b.Service == "":
		m.requests.WithLabelValues(entry, "", "", "404").Add(float64(n))
		return
	case !ok:
		m.requests.WithLabelValues(entry, b.Service, b.Revision, "503").Add(float64(n))
		return
	}
	errs, rest := take(m.pendingErrors[t] + float64(n)*rev.errorRate)
	errs = min(errs, n)
	m.pendingErrors[t] = rest
	m.requests.WithLabelValues(entry, b.Service, b.Revision, "500").Add(float64(errs))
	m.requests.WithLabelValues(entry, b.Service, b.Revision, "200").Add(float64(n - errs))
	h := m.durations.WithLabelValues(entry, b.Service, b.Revision)
	median := rev.latency.Seconds()
	if rev.spread == 0 {
		for range n {
			h.Observe(median)
		}
		return
	}
	noise := m.latencies(t)
	for range n {
		h.Observe(median * math.Exp(rev.spread*noise.NormFloat64()))
	}
}
