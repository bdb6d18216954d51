package trafficsim

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func fakeClient(t *testing.T, objs Objects, funcs interceptor.Funcs) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, gatewayv1.Install(scheme))
	for _, list := range []schema.GroupVersionKind{virtualServiceList, destinationRuleList} {
		scheme.AddKnownTypeWithName(list.GroupVersion().WithKind(strings.TrimSuffix(list.Kind, "List")), &unstructured.Unstructured{})
		scheme.AddKnownTypeWithName(list, &unstructured.UnstructuredList{})
	}
	b := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(funcs)
	for i := range objs.Services {
		b = b.WithObjects(&objs.Services[i])
	}
	for i := range objs.EndpointSlices {
		b = b.WithObjects(&objs.EndpointSlices[i])
	}
	for i := range objs.Pods {
		b = b.WithObjects(&objs.Pods[i])
	}
	for i := range objs.Ingresses {
		b = b.WithObjects(&objs.Ingresses[i])
	}
	for i := range objs.HTTPRoutes {
		b = b.WithObjects(&objs.HTTPRoutes[i])
	}
	for i := range objs.VirtualServices {
		b = b.WithObjects(&objs.VirtualServices[i])
	}
	for i := range objs.DestinationRules {
		b = b.WithObjects(&objs.DestinationRules[i])
	}
	return b.Build()
}

// series names one sample of a scrape: the metric name and its label pairs.
func series(name string, labelPairs ...string) string {
	var pairs []string
	for i := 0; i+1 < len(labelPairs); i += 2 {
		pairs = append(pairs, labelPairs[i]+"="+labelPairs[i+1])
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// scrape reads the handler's metrics as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return parseMetrics(t, rec.Body)
}

// parseMetrics reads a text exposition into samples keyed by series; histograms give their
// _count and _sum.
func parseMetrics(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labelPairs []string
			for _, l := range m.GetLabel() {
				labelPairs = append(labelPairs, l.GetName(), l.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				out[series(name, labelPairs...)] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[series(name, labelPairs...)] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[series(name+"_count", labelPairs...)] = float64(m.GetHistogram().GetSampleCount())
				out[series(name+"_sum", labelPairs...)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func requests(entry string, b Backend, code string) string {
	return series("promgate_sim_requests_total", "entry", entry, "service", b.Service, "revision", b.Revision, "code", code)
}

func durationCount(entry string, b Backend) string {
	return series("promgate_sim_request_duration_seconds_count", "entry", entry, "service", b.Service, "revision", b.Revision)
}

func durationSum(entry string, b Backend) string {
	return series("promgate_sim_request_duration_seconds_sum", "entry", entry, "service", b.Service, "revision", b.Revision)
}

func TestNewValidates(t *testing.T) {
	c := fakeClient(t, Objects{}, interceptor.Funcs{})
	ok := Entry{Kind: KindService, Name: "shop", RPS: 10}
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Namespace: ns, Entries: []Entry{ok}}, "trafficsim: Config.Client is nil"},
		{Config{Client: c, Entries: []Entry{ok}}, "trafficsim: Config.Namespace is empty"},
		{Config{Client: c, Namespace: ns}, "trafficsim: Config.Entries is empty"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{ok}, Tick: -time.Second}, "trafficsim: Config.Tick -1s is negative"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{ok, {Kind: "Gateway", Name: "gw"}}},
			`trafficsim: Config.Entries[1]: kind "Gateway" is not Service, Ingress, HTTPRoute or VirtualService`},
		{Config{Client: c, Namespace: ns, Entries: []Entry{{Kind: KindIngress}}}, "trafficsim: Config.Entries[0]: the name is empty"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{{Kind: KindIngress, Name: "shop", RPS: -1}}},
			"trafficsim: Config.Entries[0]: RPS -1 is not a finite number >= 0"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{{Kind: KindIngress, Name: "shop", RPS: math.Inf(1)}}},
			"trafficsim: Config.Entries[0]: RPS +Inf is not a finite number >= 0"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{{Kind: KindIngress, Name: "shop", Headers: map[string]string{"X": "y"}, HeaderShare: 1.5}}},
			"trafficsim: Config.Entries[0]: HeaderShare 1.5 is not in 0..1"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{{Kind: KindIngress, Name: "shop", HeaderShare: 0.5}}},
			"trafficsim: Config.Entries[0]: HeaderShare is 0.5 but Headers is empty"},
		{Config{Client: c, Namespace: ns, Entries: []Entry{ok, {Kind: KindIngress, Name: "shop"}, ok}},
			"trafficsim: Config.Entries[2] repeats Entries[0] (Service/shop)"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		assert.EqualError(t, err, tt.want)
	}
	s, err := New(Config{Client: c, Namespace: ns, Entries: []Entry{ok}})
	require.NoError(t, err)
	assert.Equal(t, DefaultTick, s.tick)
}

// release is a canary at 30% with a header route; the canary fails a fifth of its requests
// and is slower.
func release() Objects {
	objs := base()
	objs.Pods = concat(
		pods("shop", "s1", 3, nil),
		pods("shop", "c1", 1, map[string]string{AnnotationErrorRate: "0.2", AnnotationLatency: "50ms"}),
	)
	objs.Ingresses = []networkingv1.Ingress{
		ingress("shop", "shop.example.com", "/", "shop", nil),
		canary("shop-canary", "shop-canary", map[string]string{nginxCanaryWeight: "30", nginxCanaryByHeader: "X-Canary"}),
	}
	return caughtUp(objs)
}

func TestEmitIsExact(t *testing.T) {
	objs := release()
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{
		{Kind: KindIngress, Name: "shop", RPS: 100, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1},
		{Kind: KindService, Name: "shop-all", RPS: 7},
		{Kind: KindService, Name: "empty", RPS: 3},
		{Kind: KindHTTPRoute, Name: "missing", RPS: 1},
	}})
	require.NoError(t, err)
	assert.Empty(t, s.observe(objs, time.Now()))
	for range 50 {
		s.emit(200 * time.Millisecond)
	}

	got := scrape(t, s.Handler())
	const ing = "Ingress/shop"
	// 10 s at 100 rps: 10% carry the header and all go to the canary, 30% of the rest too.
	assert.Equal(t, 630.0, got[requests(ing, stable, "200")])
	assert.Equal(t, 0.0, got[requests(ing, stable, "500")], "series exist before the first error")
	assert.Equal(t, 296.0, got[requests(ing, green, "200")])
	assert.Equal(t, 74.0, got[requests(ing, green, "500")], "exactly 20% of 370")
	assert.Equal(t, 630.0, got[durationCount(ing, stable)])
	assert.InDelta(t, 630*0.010, got[durationSum(ing, stable)], 1e-9)
	assert.Equal(t, 370.0, got[durationCount(ing, green)])
	assert.InDelta(t, 370*0.050, got[durationSum(ing, green)], 1e-9)

	// 7 rps spread 3:1 over the pods: 52.5 and 17.5, the halves carried.
	allBlueN := got[requests("Service/shop-all", allBlue, "200")]
	allGreenN := got[requests("Service/shop-all", allGreen, "200")] + got[requests("Service/shop-all", allGreen, "500")]
	assert.Equal(t, 69.0, allBlueN+allGreenN, "70 requests less the carried halves")
	assert.Equal(t, 52.0, allBlueN)
	assert.Equal(t, 3.0, got[requests("Service/shop-all", allGreen, "500")], "floor(17 x 0.2)")

	assert.Equal(t, 30.0, got[requests("Service/empty", Backend{Service: "empty"}, "503")])
	assert.Equal(t, 10.0, got[requests("HTTPRoute/missing", Backend{}, "404")])
	assert.NotContains(t, got, durationCount("Service/empty", Backend{Service: "empty"}), "no pod answered")
	assert.Equal(t, 0.0, got[series("promgate_sim_read_errors_total")])
	assert.Equal(t, 0.0, got[series("promgate_sim_object_problems")])

	snap := s.Snapshot()
	assert.InDelta(t, 0.37, snap.Entry(KindIngress, "shop").All[green], 1e-9)
	assert.InDelta(t, 0.63, snap.Entry(KindIngress, "shop").All[stable], 1e-9)
}

// A silenced revision's series leave the exposition while its requests keep counting, so
// they come back with every request of the silence.
func TestSilenceHidesARevision(t *testing.T) {
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{
		{Kind: KindIngress, Name: "shop", RPS: 100, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1},
	}})
	require.NoError(t, err)
	assert.Empty(t, s.observe(release(), time.Now()))
	const ing = "Ingress/shop"
	s.Silence(green.Revision, true)
	for range 50 {
		s.emit(200 * time.Millisecond)
	}
	got := scrape(t, s.Handler())
	assert.Equal(t, 630.0, got[requests(ing, stable, "200")], "the stable revision still exports")
	for k := range got {
		assert.NotContains(t, k, "revision="+green.Revision, "no series of the silenced revision")
	}

	s.Silence(green.Revision, false)
	got = scrape(t, s.Handler())
	assert.Equal(t, 296.0, got[requests(ing, green, "200")], "its requests were counted all along")
	assert.Equal(t, 370.0, got[durationCount(ing, green)])
}

func TestEmitCarriesFractions(t *testing.T) {
	objs := base()
	objs.Pods = pods("shop", "s1", 1, map[string]string{AnnotationErrorRate: "0.3"})
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{
		{Kind: KindService, Name: "shop", RPS: 1},
	}})
	require.NoError(t, err)
	s.observe(caughtUp(objs), time.Now())
	total := func() (float64, float64) {
		got := scrape(t, s.Handler())
		return got[requests("Service/shop", stable, "200")] + got[requests("Service/shop", stable, "500")], got[requests("Service/shop", stable, "500")]
	}
	for i := 1; i <= 100; i++ {
		s.emit(100 * time.Millisecond)
		if i%10 == 0 {
			n, errs := total()
			assert.Equal(t, float64(i/10), n, "one request a second after %d ticks", i)
			assert.Equal(t, math.Floor(n*0.3+1e-9), errs, "errors follow the emitted requests")
		}
	}

	// A rate change applies from the next tick; 0 stops the traffic.
	require.NoError(t, s.SetRPS(KindService, "shop", 0))
	before, _ := total()
	s.emit(time.Second)
	after, _ := total()
	assert.Equal(t, before, after)
	require.NoError(t, s.SetRPS(KindService, "shop", 50))
	s.emit(time.Second)
	after, _ = total()
	assert.Equal(t, before+50, after)

	assert.EqualError(t, s.SetRPS(KindIngress, "shop", 1), "trafficsim: no entry Ingress/shop")
	assert.EqualError(t, s.SetRPS(KindService, "shop", math.NaN()), "trafficsim: entry Service/shop: RPS NaN is not a finite number >= 0")
}

func TestInvalidAnnotationsUseDefaults(t *testing.T) {
	objs := base()
	objs.Pods = pods("shop", "s1", 1, map[string]string{AnnotationErrorRate: "lots", AnnotationLatency: "-1s"})
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{
		{Kind: KindService, Name: "shop", RPS: 10},
	}})
	require.NoError(t, err)
	objs = caughtUp(objs)
	fresh := s.observe(objs, time.Now())
	assert.Len(t, fresh, 2)
	assert.Equal(t, fresh, s.Snapshot().Problems)
	assert.Empty(t, s.observe(objs, time.Now()), "a problem is logged once, not every tick")
	s.emit(time.Second)

	got := scrape(t, s.Handler())
	assert.Equal(t, 10.0, got[requests("Service/shop", stable, "200")])
	assert.Equal(t, 0.0, got[requests("Service/shop", stable, "500")])
	assert.InDelta(t, 10*DefaultLatency.Seconds(), got[durationSum("Service/shop", stable)], 1e-9)
	assert.Equal(t, 2.0, got[series("promgate_sim_object_problems")])
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestRunSurvivesReadErrors(t *testing.T) {
	var down atomic.Bool
	c := fakeClient(t, release(), interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if down.Load() {
				return errors.New("connection refused")
			}
			return c.List(ctx, list, opts...)
		},
	})
	s, err := New(Config{Client: c, Namespace: ns, Tick: 10 * time.Millisecond, Entries: []Entry{
		{Kind: KindIngress, Name: "shop", RPS: 1000},
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), zap.New(zap.WriteTo(testLogWriter{t}))))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	require.Eventually(t, func() bool { return !s.Snapshot().Time.IsZero() }, 10*time.Second, 10*time.Millisecond)
	assert.EqualError(t, s.Run(ctx), "trafficsim: Run is already running")

	total := func() float64 {
		got := scrape(t, s.Handler())
		return got[requests("Ingress/shop", stable, "200")]
	}
	down.Store(true)
	require.Eventually(t, func() bool {
		return scrape(t, s.Handler())[series("promgate_sim_read_errors_total")] >= 3
	}, 10*time.Second, 10*time.Millisecond)
	frozen := s.Snapshot().Time
	during := total()
	require.Eventually(t, func() bool { return total() > during }, 10*time.Second, 10*time.Millisecond,
		"traffic follows the last objects read while the API server is away")
	assert.Equal(t, frozen, s.Snapshot().Time, "the snapshot stays the last successful read")

	down.Store(false)
	require.Eventually(t, func() bool { return s.Snapshot().Time.After(frozen) }, 10*time.Second, 10*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestHandlerServesMetricsOnly(t *testing.T) {
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{{Kind: KindService, Name: "shop"}}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	got := scrape(t, s.Handler())
	assert.Contains(t, got, series("promgate_sim_read_errors_total"))
}

// The simulator lists every kind an entry needs, and no more.
func TestReadListsWhatEntriesNeed(t *testing.T) {
	var listed []string
	c := fakeClient(t, release(), interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			listed = append(listed, typeName(list))
			return c.List(ctx, list, opts...)
		},
	})
	s, err := New(Config{Client: c, Namespace: ns, Entries: []Entry{{Kind: KindIngress, Name: "shop"}}})
	require.NoError(t, err)
	objs, err := s.read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"IngressList", "ServiceList", "EndpointSliceList", "PodList"}, listed, "routes first, pods last")
	assert.Len(t, objs.Pods, 4)
	assert.Len(t, objs.Ingresses, 2)
	assert.Equal(t, Route(release(), s.entries).Entries, Route(objs, s.entries).Entries)
}

func typeName(list client.ObjectList) string {
	switch list.(type) {
	case *corev1.ServiceList:
		return "ServiceList"
	case *discoveryv1.EndpointSliceList:
		return "EndpointSliceList"
	case *corev1.PodList:
		return "PodList"
	case *networkingv1.IngressList:
		return "IngressList"
	case *gatewayv1.HTTPRouteList:
		return "HTTPRouteList"
	}
	return "unknown"
}
