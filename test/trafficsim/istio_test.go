package trafficsim

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func istio(t *testing.T, kind, name, namespace, spec string) unstructured.Unstructured {
	t.Helper()
	var sp map[string]any
	require.NoError(t, json.Unmarshal([]byte(spec), &sp))
	u := unstructured.Unstructured{Object: map[string]any{"spec": sp}}
	u.SetAPIVersion("networking.istio.io/v1")
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	// As the API server serves them: whole numbers are int64.
	u.Object = intNumbers(u.Object).(map[string]any)
	return u
}

func intNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k := range x {
			x[k] = intNumbers(x[k])
		}
	case []any:
		for i := range x {
			x[i] = intNumbers(x[i])
		}
	case float64:
		return int64(x)
	}
	return v
}

func TestRouteVirtualService(t *testing.T) {
	header := map[string]string{"X-Canary": "always"}
	weighted := func(t *testing.T) unstructured.Unstructured {
		return istio(t, "VirtualService", "shop", ns, `{"hosts": ["shop.example.com"], "http": [
			{"name": "shop-promgate-canary", "match": [{"uri": {"prefix": "/"}, "headers": {"x-canary": {"exact": "always"}}}],
			 "route": [{"destination": {"host": "shop-canary"}, "weight": 100}]},
			{"name": "shop", "route": [{"destination": {"host": "shop.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 70},
			                           {"destination": {"host": "shop-canary.shop.svc.cluster.local", "port": {"number": 80}}, "weight": 30}]}]}`)
	}
	subsets := func(t *testing.T) unstructured.Unstructured {
		return istio(t, "DestinationRule", "shop-all", ns, `{"host": "shop-all", "subsets": [
			{"name": "stable", "labels": {"app": "shop", "pod-template-hash": "s1"}},
			{"name": "canary", "labels": {"app": "shop", "pod-template-hash": "c1"}}]}`)
	}
	for _, tt := range []struct {
		name         string
		vs           []unstructured.Unstructured
		drs          func(t *testing.T) []unstructured.Unstructured
		header       Shares
		plain        Shares
		wantProblems []string
	}{
		{name: "weights and a header route", vs: []unstructured.Unstructured{weighted(t)},
			header: Shares{green: 1}, plain: Shares{stable: 0.7, green: 0.3}},
		{name: "a lone destination without a weight takes all",
			vs:     []unstructured.Unstructured{istio(t, "VirtualService", "shop", ns, `{"http": [{"route": [{"destination": {"host": "shop"}}]}]}`)},
			header: Shares{stable: 1}, plain: Shares{stable: 1}},
		{name: "subsets narrow a Service's endpoints to their labels",
			vs: []unstructured.Unstructured{istio(t, "VirtualService", "shop", ns, `{"http": [{"route": [
				{"destination": {"host": "shop-all", "subset": "stable"}, "weight": 80},
				{"destination": {"host": "shop-all", "subset": "canary"}, "weight": 20}]}]}`)},
			drs:    func(t *testing.T) []unstructured.Unstructured { return []unstructured.Unstructured{subsets(t)} },
			header: Shares{allBlue: 0.8, allGreen: 0.2}, plain: Shares{allBlue: 0.8, allGreen: 0.2}},
		{name: "regex and prefix header matches, anchored as Envoy's",
			vs: []unstructured.Unstructured{istio(t, "VirtualService", "shop", ns, `{"http": [
				{"match": [{"headers": {"x-canary": {"regex": "alw.*"}}}], "route": [{"destination": {"host": "shop-canary"}}]},
				{"match": [{"headers": {"x-canary": {"regex": "lways"}}}], "route": [{"destination": {"host": "empty"}}]},
				{"route": [{"destination": {"host": "shop"}}]}]}`)},
			header: Shares{green: 1}, plain: Shares{stable: 1}},
		{name: "a query parameter match never holds; nothing else routes",
			vs: []unstructured.Unstructured{istio(t, "VirtualService", "shop", ns, `{"http": [
				{"match": [{"queryParams": {"canary": {"exact": "1"}}}], "route": [{"destination": {"host": "shop-canary"}}]}]}`)},
			header: unrouted(), plain: unrouted()},
		{name: "no VirtualService", header: unrouted(), plain: unrouted()},
		{name: "an unknown subset and another namespace's host are reported and left out",
			vs: []unstructured.Unstructured{istio(t, "VirtualService", "shop", ns, `{"http": [{"route": [
				{"destination": {"host": "shop-all", "subset": "blue"}, "weight": 50},
				{"destination": {"host": "shop.billing.svc.cluster.local"}, "weight": 25},
				{"destination": {"host": "shop"}, "weight": 25}]}]}`)},
			drs:    func(t *testing.T) []unstructured.Unstructured { return []unstructured.Unstructured{subsets(t)} },
			header: Shares{stable: 1}, plain: Shares{stable: 1},
			wantProblems: []string{
				`virtualservice shop: destination host "shop.billing.svc.cluster.local" is not a Service of namespace shop; ignored`,
				`virtualservice shop: no DestinationRule of host shop-all has a subset "blue"; ignored`,
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs := caughtUp(base())
			objs.VirtualServices = tt.vs
			if tt.drs != nil {
				objs.DestinationRules = tt.drs(t)
			}
			snap := Route(objs, []Entry{{Kind: KindVirtualService, Name: "shop", Headers: header, HeaderShare: 0.5}})
			split := snap.Entry(KindVirtualService, "shop")
			assert.InDeltaMapValues(t, tt.header, split.Header, 1e-9, "header")
			assert.InDeltaMapValues(t, tt.plain, split.Plain, 1e-9, "plain")
			assert.Equal(t, tt.wantProblems, snap.Problems)
		})
	}
}

// TestSimulatorReadsIstioKinds: a VirtualService entry makes the simulator list
// VirtualServices and DestinationRules, and route through them.
func TestSimulatorReadsIstioKinds(t *testing.T) {
	objs := caughtUp(base())
	objs.VirtualServices = []unstructured.Unstructured{istio(t, "VirtualService", "shop", ns, `{"http": [{"route": [
		{"destination": {"host": "shop-all", "subset": "canary"}, "weight": 100}]}]}`)}
	objs.DestinationRules = []unstructured.Unstructured{istio(t, "DestinationRule", "shop-all", ns, `{"host": "shop-all.shop.svc.cluster.local",
		"subsets": [{"name": "canary", "labels": {"pod-template-hash": "c1"}}]}`)}
	s, err := New(Config{Client: fakeClient(t, objs, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{{Kind: KindVirtualService, Name: "shop", RPS: 10}}})
	require.NoError(t, err)
	read, err := s.read(context.Background())
	require.NoError(t, err)
	require.Len(t, read.VirtualServices, 1)
	require.Len(t, read.DestinationRules, 1)
	assert.Empty(t, s.observe(read, time.Now()))
	assert.Equal(t, Shares{allGreen: 1}, s.Snapshot().Entry(KindVirtualService, "shop").All)
}
