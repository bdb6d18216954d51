package trafficsim

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/test/testbed"
)

// TestOnTheBed routes through objects a real API server stores and serves: a Service of
// two revisions, an ingress-nginx canary at 30% with a header, an HTTPRoute with a header
// rule and weights; then follows a weight change and a canary pod going unready.
func TestOnTheBed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp := testbed.StartControlPlane(t)
	c := cp.Client
	const ns = "trafficsim"
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))

	for _, svc := range []corev1.Service{
		service("web", map[string]string{"app": "web", podTemplateHash: "aaa"}),
		service("web-canary", map[string]string{"app": "web", podTemplateHash: "bbb"}),
		service("web-all", map[string]string{"app": "web"}),
	} {
		svc.Namespace = ns
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
		require.NoError(t, c.Create(ctx, &svc))
	}
	canaryProfile := map[string]string{AnnotationErrorRate: "0.2", AnnotationLatency: "50ms"}
	for _, p := range pods("web", "aaa", 3, nil) {
		createPod(ctx, t, c, ns, p, true)
	}
	canaryPod := createPod(ctx, t, c, ns, pods("web", "bbb", 1, canaryProfile)[0], true)
	// Created but never Ready: takes no traffic.
	createPod(ctx, t, c, ns, pods("web", "bbb", 2, canaryProfile)[1], false)

	for _, ing := range []networkingv1.Ingress{
		ingress("web", "web.example.com", "/", "web", nil),
		ingress("web-canary", "web.example.com", "/", "web-canary", map[string]string{
			nginxCanary: "true", nginxCanaryWeight: "30", nginxCanaryByHeader: "X-Canary",
		}),
	} {
		ing.Namespace = ns
		require.NoError(t, c.Create(ctx, &ing))
	}
	route := httpRoute("web",
		gatewayv1.HTTPRouteRule{
			Matches:     []gatewayv1.HTTPRouteMatch{headerMatch(gatewayv1.HeaderMatchExact, "X-Canary", "always")},
			BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("web-canary", nil)},
		},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
			backendRef("web", ptr.To[int32](80)), backendRef("web-canary", ptr.To[int32](20)),
		}},
	)
	route.Namespace = ns
	route.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "gateway"}}
	require.NoError(t, c.Create(ctx, &route))
	// This control plane runs no endpointslice controller: the test writes the slices.
	writeSlices(ctx, t, c, ns)

	canaryHeader := map[string]string{"X-Canary": "always"}
	sim, err := New(Config{Client: c, Namespace: ns, Tick: 50 * time.Millisecond, Entries: []Entry{
		{Kind: KindIngress, Name: "web", RPS: 100, Headers: canaryHeader, HeaderShare: 0.1},
		{Kind: KindHTTPRoute, Name: "web", RPS: 50, Headers: canaryHeader, HeaderShare: 0.5},
		{Kind: KindService, Name: "web-all", RPS: 20},
	}})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(log.IntoContext(ctx, zap.New(zap.WriteTo(testLogWriter{t}))))
	done := make(chan error, 1)
	go func() { done <- sim.Run(runCtx) }()
	defer func() {
		stop()
		assert.NoError(t, <-done)
	}()
	metricsURL := "http://" + testbed.Serve(t, sim.Handler()) + "/metrics"

	stableB := Backend{Service: "web", Revision: "aaa"}
	canaryB := Backend{Service: "web-canary", Revision: "bbb"}
	require.Eventually(t, func() bool { return !sim.Snapshot().Time.IsZero() }, time.Minute, 50*time.Millisecond)

	t.Run("Shares", func(t *testing.T) {
		snap := sim.Snapshot()
		assert.Empty(t, snap.Problems)
		ing := snap.Entry(KindIngress, "web")
		assertShares(t, Shares{canaryB: 1}, ing.Header, "ingress header")
		assertShares(t, Shares{stableB: 0.7, canaryB: 0.3}, ing.Plain, "ingress plain")
		assertShares(t, Shares{stableB: 0.63, canaryB: 0.37}, ing.All, "ingress")
		assertShares(t, Shares{stableB: 0.4, canaryB: 0.6}, snap.Entry(KindHTTPRoute, "web").All, "httproute")
		assertShares(t, Shares{{Service: "web-all", Revision: "aaa"}: 0.75, {Service: "web-all", Revision: "bbb"}: 0.25},
			snap.Entry(KindService, "web-all").All, "service")
	})

	t.Run("Counters", func(t *testing.T) {
		const entry = "Ingress/web"
		before := scrapeURL(ctx, t, metricsURL)
		start := time.Now()
		var after map[string]float64
		require.Eventually(t, func() bool {
			after = scrapeURL(ctx, t, metricsURL)
			return after[requests(entry, stableB, "200")]-before[requests(entry, stableB, "200")] >= 150
		}, time.Minute, 100*time.Millisecond)
		elapsed := time.Since(start)
		delta := func(key string) float64 { return after[key] - before[key] }

		canaryOK, canaryErr := delta(requests(entry, canaryB, "200")), delta(requests(entry, canaryB, "500"))
		canaryN := canaryOK + canaryErr
		stableN := delta(requests(entry, stableB, "200")) + delta(requests(entry, stableB, "500"))
		total := canaryN + stableN
		// Each of the three flows carries less than one request between ticks.
		assert.InDelta(t, 0.37, canaryN/total, 3/total, "canary share of %v requests", total)
		assert.LessOrEqual(t, math.Abs(canaryErr-0.2*canaryN), 1.0, "%v errors of %v canary requests", canaryErr, canaryN)
		assert.Zero(t, delta(requests(entry, stableB, "500")))
		assert.InDelta(t, 100, total/elapsed.Seconds(), 25, "requests per second over %s", elapsed)
		assert.InDelta(t, 0.050, delta(durationSum(entry, canaryB))/delta(durationCount(entry, canaryB)), 1e-9)
		assert.InDelta(t, 0.010, delta(durationSum(entry, stableB))/delta(durationCount(entry, stableB)), 1e-9)
		assert.Zero(t, after[series("promgate_sim_read_errors_total")])
	})

	t.Run("WeightChange", func(t *testing.T) {
		var canaryIng networkingv1.Ingress
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-canary"}, &canaryIng))
		canaryIng.Annotations[nginxCanaryWeight] = "0"
		require.NoError(t, c.Update(ctx, &canaryIng))
		require.Eventually(t, func() bool {
			return sim.Snapshot().Entry(KindIngress, "web").Plain[stableB] == 1
		}, time.Minute, 50*time.Millisecond)
		ing := sim.Snapshot().Entry(KindIngress, "web")
		assertShares(t, Shares{canaryB: 1}, ing.Header, "header requests still reach the canary")
		assertShares(t, Shares{stableB: 0.9, canaryB: 0.1}, ing.All, "ingress")
	})

	t.Run("CanaryUnready", func(t *testing.T) {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(canaryPod), canaryPod))
		canaryPod.Status.Conditions[0].Status = corev1.ConditionFalse
		require.NoError(t, c.Status().Update(ctx, canaryPod))
		writeSlices(ctx, t, c, ns)
		noPods := Backend{Service: "web-canary"}
		require.Eventually(t, func() bool {
			return sim.Snapshot().Entry(KindHTTPRoute, "web").All[noPods] > 0
		}, time.Minute, 50*time.Millisecond)
		assertShares(t, Shares{stableB: 0.4, noPods: 0.6}, sim.Snapshot().Entry(KindHTTPRoute, "web").All, "httproute")
		require.Eventually(t, func() bool {
			return scrapeURL(ctx, t, metricsURL)[requests("HTTPRoute/web", noPods, "503")] > 0
		}, time.Minute, 100*time.Millisecond, "requests to a Service without ready pods get 503")
	})
}

// writeSlices writes the EndpointSlices the endpointslice controller would for the
// Services and pods of ns as they are now.
func writeSlices(ctx context.Context, t *testing.T, c client.Client, ns string) {
	t.Helper()
	var svcs corev1.ServiceList
	require.NoError(t, c.List(ctx, &svcs, client.InNamespace(ns)))
	var pods corev1.PodList
	require.NoError(t, c.List(ctx, &pods, client.InNamespace(ns)))
	for _, want := range caughtUp(Objects{Services: svcs.Items, Pods: pods.Items}).EndpointSlices {
		want.Namespace = ns
		for i := range want.Endpoints {
			want.Endpoints[i].TargetRef.Namespace = ns
		}
		var got discoveryv1.EndpointSlice
		err := c.Get(ctx, client.ObjectKeyFromObject(&want), &got)
		if apierrors.IsNotFound(err) {
			require.NoError(t, c.Create(ctx, &want))
			continue
		}
		require.NoError(t, err)
		got.Endpoints = want.Endpoints
		require.NoError(t, c.Update(ctx, &got))
	}
}

// createPod creates p in ns and, if ready, reports it Ready through the status subresource
// as the kubelet would.
func createPod(ctx context.Context, t *testing.T, c client.Client, ns string, p corev1.Pod, ready bool) *corev1.Pod {
	t.Helper()
	p.Namespace = ns
	p.Spec.Containers = []corev1.Container{{Name: "app", Image: "app:" + p.Labels[podTemplateHash]}}
	status := p.Status
	p.Status = corev1.PodStatus{}
	require.NoError(t, c.Create(ctx, &p))
	if ready {
		p.Status = status
		p.Status.Phase = corev1.PodRunning
		require.NoError(t, c.Status().Update(ctx, &p))
	}
	return &p
}

func scrapeURL(ctx context.Context, t *testing.T, url string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return parseMetrics(t, resp.Body)
}

// TestJournalOnTheBed replays the routing after each write a real API server made, in its
// order: a route weighted to a Service before its EndpointSlices exist shows as the 503
// share it was, for the one write it lasted.
func TestJournalOnTheBed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp := testbed.StartControlPlane(t)
	c := cp.Client
	const ns = "journal"
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	stableSvc := service("shop", map[string]string{"app": "shop", podTemplateHash: "s1"})
	stableSvc.Namespace = ns
	stableSvc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	require.NoError(t, c.Create(ctx, &stableSvc))
	for _, p := range concat(pods("shop", "s1", 2, nil), pods("shop", "c1", 1, nil)) {
		createPod(ctx, t, c, ns, p, true)
	}
	writeSlices(ctx, t, c, ns)
	route := httpRoute("shop", gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("shop", nil)}})
	route.Namespace = ns
	route.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "gateway"}}
	require.NoError(t, c.Create(ctx, &route))

	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: testbed.Scheme()})
	require.NoError(t, err)
	j, err := StartJournal(ctx, wc, ns)
	require.NoError(t, err)

	// The canary Service, then the weights, then (late) its slice.
	canarySvc := service("shop-canary", map[string]string{"app": "shop", podTemplateHash: "c1"})
	canarySvc.Namespace = ns
	canarySvc.Spec.Ports = stableSvc.Spec.Ports
	require.NoError(t, c.Create(ctx, &canarySvc))
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(&route), &route))
	route.Spec.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{backendRef("shop", ptr.To[int32](80)), backendRef("shop-canary", ptr.To[int32](20))}
	require.NoError(t, c.Update(ctx, &route))
	writeSlices(ctx, t, c, ns)

	entry := Entry{Kind: KindHTTPRoute, Name: "shop"}
	var got []Shares
	require.Eventually(t, func() bool {
		got = nil
		j.Replay([]Entry{entry}, func(w Write, snap Snapshot) { got = append(got, snap.Entry(entry.Kind, entry.Name).All) })
		return len(got) >= 3
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, j.Err())
	stableB, canaryB := Backend{Service: "shop", Revision: "s1"}, Backend{Service: "shop-canary", Revision: "c1"}
	assertShares(t, Shares{stableB: 1}, got[0], "the canary Service alone changes nothing")
	assertShares(t, Shares{stableB: 0.8, {Service: "shop-canary"}: 0.2}, got[1], "weighted before its slice: 503s")
	assertShares(t, Shares{stableB: 0.8, canaryB: 0.2}, got[len(got)-1], "then the slice")
}
