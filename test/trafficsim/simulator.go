package trafficsim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The kinds of entry points.
const (
	KindService   = "Service"
	KindIngress   = "Ingress"
	KindHTTPRoute = "HTTPRoute"
	// KindVirtualService is an Istio VirtualService (networking.istio.io/v1), with the
	// DestinationRules its destinations' subsets come from.
	KindVirtualService = "VirtualService"
)

// DefaultTick is the tick of a Config that sets none.
const DefaultTick = 200 * time.Millisecond

// readTimeout bounds one tick's reads, so a hung API server delays routing updates
// instead of stopping the traffic.
const readTimeout = 5 * time.Second

// Entry is a point where simulated clients send requests.
type Entry struct {
	// Kind is KindService, KindIngress, KindHTTPRoute or KindVirtualService.
	Kind string
	Name string
	// RPS is the requests per second sent to this entry point.
	RPS float64
	// Headers are carried by HeaderShare (0..1) of the requests, e.g. {"X-Canary": "always"}.
	Headers     map[string]string
	HeaderShare float64
}

// Config configures a Simulator.
type Config struct {
	// Client reads the objects; its scheme must know the Gateway API when an entry is an
	// HTTPRoute.
	Client    client.Client
	Namespace string
	Entries   []Entry
	// Tick is how often the objects are read and requests emitted; default DefaultTick.
	Tick time.Duration
	// Seed seeds the latency noise (AnnotationLatencySpread): one seed and one routing
	// give the same latencies, request by request.
	Seed uint64
}

// Simulator routes simulated requests through the live objects of one namespace and
// counts them in Prometheus metrics.
type Simulator struct {
	client    client.Client
	namespace string
	entries   []Entry
	tick      time.Duration
	registry  *prometheus.Registry
	metrics   *metrics

	running atomic.Bool

	mu       sync.Mutex
	rps      map[string]float64 // by entry key; SetRPS moves it while Run reads it
	snapshot Snapshot
	silenced map[string]bool // revisions whose series the handler leaves out

	// Owned by the Run goroutine.
	world    *world // the last objects read; traffic keeps flowing on them while reads fail
	problems map[string]bool
	failures int // consecutive failed reads
}

// New checks cfg and builds a simulator; Run starts the traffic.
func New(cfg Config) (*Simulator, error) {
	if cfg.Client == nil {
		return nil, errors.New("trafficsim: Config.Client is nil")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("trafficsim: Config.Namespace is empty")
	}
	if len(cfg.Entries) == 0 {
		return nil, errors.New("trafficsim: Config.Entries is empty")
	}
	if cfg.Tick < 0 {
		return nil, fmt.Errorf("trafficsim: Config.Tick %s is negative", cfg.Tick)
	}
	s := &Simulator{
		client:    cfg.Client,
		namespace: cfg.Namespace,
		tick:      cfg.Tick,
		registry:  prometheus.NewRegistry(),
		rps:       map[string]float64{},
		silenced:  map[string]bool{},
	}
	if s.tick == 0 {
		s.tick = DefaultTick
	}
	seen := map[string]int{}
	for i, e := range cfg.Entries {
		if err := validEntry(e); err != nil {
			return nil, fmt.Errorf("trafficsim: Config.Entries[%d]: %w", i, err)
		}
		key := entryKey(e.Kind, e.Name)
		if j, ok := seen[key]; ok {
			return nil, fmt.Errorf("trafficsim: Config.Entries[%d] repeats Entries[%d] (%s)", i, j, key)
		}
		seen[key] = i
		headers := make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			headers[k] = v
		}
		e.Headers = headers
		s.entries = append(s.entries, e)
		s.rps[key] = e.RPS
	}
	m, err := newMetrics(s.registry, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("trafficsim: registering metrics: %w", err)
	}
	s.metrics = m
	return s, nil
}

func validEntry(e Entry) error {
	switch e.Kind {
	case KindService, KindIngress, KindHTTPRoute, KindVirtualService:
	default:
		return fmt.Errorf("kind %q is not %s, %s, %s or %s", e.Kind, KindService, KindIngress, KindHTTPRoute, KindVirtualService)
	}
	if e.Name == "" {
		return errors.New("the name is empty")
	}
	if err := validRPS(e.RPS); err != nil {
		return err
	}
	if math.IsNaN(e.HeaderShare) || e.HeaderShare < 0 || e.HeaderShare > 1 {
		return fmt.Errorf("HeaderShare %v is not in 0..1", e.HeaderShare)
	}
	if e.HeaderShare > 0 && len(e.Headers) == 0 {
		return fmt.Errorf("HeaderShare is %v but Headers is empty", e.HeaderShare)
	}
	return nil
}

func validRPS(rps float64) error {
	if math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 {
		return fmt.Errorf("RPS %v is not a finite number >= 0", rps)
	}
	return nil
}

// SetRPS changes the request rate of an entry from the next tick on; 0 stops its traffic.
func (s *Simulator) SetRPS(kind, name string, rps float64) error {
	key := entryKey(kind, name)
	if err := validRPS(rps); err != nil {
		return fmt.Errorf("trafficsim: entry %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rps[key]; !ok {
		return fmt.Errorf("trafficsim: no entry %s", key)
	}
	s.rps[key] = rps
	return nil
}

// Snapshot returns the routing computed from the last successful read. Its maps are
// shared: read them, do not modify them.
func (s *Simulator) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot
}

// Silence stops (or, with false, resumes) exporting the series of revision, as when an
// exporter or its scrape target vanishes: requests are still counted, so the series come
// back where they would have been. Prometheus marks the missing series stale, and queries
// about the revision find no data.
func (s *Simulator) Silence(revision string, silenced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if silenced {
		s.silenced[revision] = true
	} else {
		delete(s.silenced, revision)
	}
}

// Handler serves the simulator's metrics at /metrics, without the silenced revisions'.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.GathererFunc(s.gather), promhttp.HandlerOpts{}))
	return mux
}

func (s *Simulator) gather() ([]*dto.MetricFamily, error) {
	families, err := s.registry.Gather()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.silenced) == 0 {
		return families, err
	}
	for _, f := range families {
		kept := f.Metric[:0]
		for _, m := range f.Metric {
			if !s.silencedMetric(m) {
				kept = append(kept, m)
			}
		}
		f.Metric = kept
	}
	return families, err
}

func (s *Simulator) silencedMetric(m *dto.Metric) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == "revision" && s.silenced[l.GetValue()] {
			return true
		}
	}
	return false
}

// Run reads the objects and emits requests every tick until ctx ends, then returns nil.
// A failed read is logged (through the controller-runtime logger in ctx) and counted, and
// the requests of that tick follow the last objects read, as a real data plane keeps its
// configuration while the API server is away. Run may not be called twice at once.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("trafficsim: Run is already running")
	}
	defer s.running.Store(false)
	logger := log.FromContext(ctx).WithName("trafficsim")
	ticker := time.NewTicker(s.tick)
	defer ticker.Stop()
	last := time.Now()
	for {
		now := time.Now()
		// The first tick only reads: no time has passed, so no request is due.
		objs, err := s.read(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.metrics.readErrors.Inc()
			if s.failures == 0 {
				logger.Error(err, "reading the objects failed; routing on the last objects read")
			}
			s.failures++
		default:
			if s.failures > 0 {
				logger.Info("reading the objects works again", "failedReads", s.failures)
				s.failures = 0
			}
			for _, p := range s.observe(objs, now) {
				logger.Info("problem in the objects; using defaults", "problem", p)
			}
		}
		s.emit(now.Sub(last))
		last = now
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// read lists the objects the entries need, routes first and pods last. The lists are not
// one snapshot: whoever moves traffic writes in the other order (a Service and its pods
// before the route that weights it, the stable Service's move before the route goes back),
// so this order sees a route no newer than what it points at, as a data plane that applies
// changes in order would, and never a moment that was not there.
func (s *Simulator) read(ctx context.Context) (Objects, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var objs Objects
	in := client.InNamespace(s.namespace)
	// Ingresses, HTTPRoutes and Istio's kinds are read only when an entry needs them, so
	// a cluster without the Gateway API or Istio serves Service and Ingress entries.
	if s.hasKind(KindVirtualService) {
		vss := &unstructured.UnstructuredList{}
		vss.SetGroupVersionKind(virtualServiceList)
		if err := s.client.List(ctx, vss, in); err != nil {
			return objs, fmt.Errorf("listing VirtualServices in %s: %w", s.namespace, err)
		}
		objs.VirtualServices = vss.Items
		drs := &unstructured.UnstructuredList{}
		drs.SetGroupVersionKind(destinationRuleList)
		if err := s.client.List(ctx, drs, in); err != nil {
			return objs, fmt.Errorf("listing DestinationRules in %s: %w", s.namespace, err)
		}
		objs.DestinationRules = drs.Items
	}
	if s.hasKind(KindHTTPRoute) {
		var routes gatewayv1.HTTPRouteList
		if err := s.client.List(ctx, &routes, in); err != nil {
			return objs, fmt.Errorf("listing HTTPRoutes in %s: %w", s.namespace, err)
		}
		objs.HTTPRoutes = routes.Items
	}
	if s.hasKind(KindIngress) {
		var ingresses networkingv1.IngressList
		if err := s.client.List(ctx, &ingresses, in); err != nil {
			return objs, fmt.Errorf("listing Ingresses in %s: %w", s.namespace, err)
		}
		objs.Ingresses = ingresses.Items
	}
	var services corev1.ServiceList
	if err := s.client.List(ctx, &services, in); err != nil {
		return objs, fmt.Errorf("listing Services in %s: %w", s.namespace, err)
	}
	objs.Services = services.Items
	var slices discoveryv1.EndpointSliceList
	if err := s.client.List(ctx, &slices, in); err != nil {
		return objs, fmt.Errorf("listing EndpointSlices in %s: %w", s.namespace, err)
	}
	objs.EndpointSlices = slices.Items
	var pods corev1.PodList
	if err := s.client.List(ctx, &pods, in); err != nil {
		return objs, fmt.Errorf("listing Pods in %s: %w", s.namespace, err)
	}
	objs.Pods = pods.Items
	return objs, nil
}

func (s *Simulator) hasKind(kind string) bool {
	for _, e := range s.entries {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// observe routes on freshly read objects, publishes the snapshot and returns the problems
// that were not there on the previous read, to be logged once rather than every tick.
func (s *Simulator) observe(objs Objects, at time.Time) []string {
	s.world = newWorld(objs)
	snap := s.world.snapshot(s.entries)
	snap.Time = at
	s.mu.Lock()
	s.snapshot = snap
	s.mu.Unlock()

	s.metrics.problems.Set(float64(len(snap.Problems)))
	var fresh []string
	current := make(map[string]bool, len(snap.Problems))
	for _, p := range snap.Problems {
		current[p] = true
		if !s.problems[p] {
			fresh = append(fresh, p)
		}
	}
	s.problems = current
	return fresh
}

// emit sends the requests of elapsed time through the last routing.
func (s *Simulator) emit(elapsed time.Duration) {
	if s.world == nil {
		return
	}
	s.mu.Lock()
	snap := s.snapshot
	rates := make([]float64, len(s.entries))
	for i, e := range s.entries {
		rates[i] = s.rps[entryKey(e.Kind, e.Name)]
	}
	s.mu.Unlock()
	s.metrics.emit(s.world, snap, s.entries, rates, elapsed.Seconds())
}
