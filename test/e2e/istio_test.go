package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/trafficsim"
)

// istioObject is an Istio object of the bed's stand-in CRDs (test/testbed/crds/istio).
func istioObject(t *testing.T, kind, ns, name, spec string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{}}
	require.NoError(t, json.Unmarshal([]byte(`{"spec": `+spec+`}`), &u.Object))
	u.SetAPIVersion("networking.istio.io/v1")
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func (b *rolloutBed) getIstio(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("networking.istio.io/v1")
	u.SetKind(kind)
	require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: name}, u))
	return u
}

// vsWeights returns the VirtualService's weights by destination (host, or host/subset),
// route by route.
func (b *rolloutBed) vsWeights(t *testing.T, name string) []map[string]int64 {
	t.Helper()
	http, _, err := unstructured.NestedSlice(b.getIstio(t, "VirtualService", name).Object, "spec", "http")
	require.NoError(t, err)
	var out []map[string]int64
	for _, r := range http {
		dests, _, _ := unstructured.NestedSlice(r.(map[string]any), "route")
		w := map[string]int64{}
		for _, d := range dests {
			dm := d.(map[string]any)
			host, _, _ := unstructured.NestedString(dm, "destination", "host")
			if subset, _, _ := unstructured.NestedString(dm, "destination", "subset"); subset != "" {
				host += "/" + subset
			}
			weight, found, _ := unstructured.NestedInt64(dm, "weight")
			if !found {
				weight = 100
			}
			w[host] = weight
		}
		out = append(out, w)
	}
	return out
}

// TestIstioReleases: releases through an Istio VirtualService on the bed (the stand-in
// CRDs of our own; no mesh runs, the traffic simulator routes as Istio's proxies would):
// to the stable and -canary Services with a header route, aborted by a failing analysis;
// and to DestinationRule subsets, completed; every user object restored exactly.
func TestIstioReleases(t *testing.T) {
	b := startRolloutBed(t, trafficsim.Config{Entries: []trafficsim.Entry{
		{Kind: trafficsim.KindVirtualService, Name: "mesh-svc", RPS: 50, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1},
		{Kind: trafficsim.KindVirtualService, Name: "mesh-subsets", RPS: 50},
	}})
	header := []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Name: "X-Canary", Value: "always"}}}}

	t.Run("to the Services, with a header route, aborted by analysis", func(t *testing.T) {
		const app = "mesh-svc"
		b.app(t, app)
		b.create(t, istioObject(t, "VirtualService", b.ns, app, `{"hosts": ["mesh-svc.example.com"], "gateways": ["public"], "http": [
			{"name": "primary", "timeout": "5s", "route": [{"destination": {"host": "mesh-svc", "port": {"number": 80}}}]}]}`))
		before := b.getIstio(t, "VirtualService", app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Matches: header, Analysis: fixtures.Analysis("error-rate")},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Istio: &v1alpha1.IstioTrafficRouting{
				VirtualService: v1alpha1.IstioVirtualService{Name: app, Routes: []string{"primary"}},
			}}},
		}})
		origSelector := b.selector(t, app)
		blue := b.get(t, app).Status.StableRevision
		b.setTemplate(t, app, "echoserver:green", "0.5")

		ro := b.waitStep(t, app, 1, v1alpha1.StepMetricsAnalysis, time.Minute)
		green := ro.Status.CanaryRevision
		assert.Equal(t, []map[string]int64{{app + "-canary": 100}, {app: 80, app + "-canary": 20}}, b.vsWeights(t, app),
			"a header route to the canary before the weighted route")
		require.Eventually(t, func() bool {
			split := b.sim.Snapshot().Entry(trafficsim.KindVirtualService, app)
			g := trafficsim.Backend{Service: app + "-canary", Revision: green}
			return split.Plain[g] > 0.19 && split.Plain[g] < 0.21 && split.Header[g] > 0.99
		}, 10*time.Second, 200*time.Millisecond, "20%% of plain requests and every X-Canary request reach green")

		ro = b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Contains(t, ro.Status.AbortReason, "error-rate")
		assert.Equal(t, []map[string]int64{{app: 100, app + "-canary": 0}}, b.vsWeights(t, app),
			"aborted: the header route gone, no weight to the canary (as the Gateway API router does)")
		assert.Equal(t, withHash(origSelector, blue), b.selector(t, app), "all traffic on blue")
		require.Eventually(t, func() bool {
			split := b.sim.Snapshot().Entry(trafficsim.KindVirtualService, app)
			return split.All[trafficsim.Backend{Service: app, Revision: blue}] > 0.99
		}, 10*time.Second, 200*time.Millisecond, "every request back on blue")

		b.setTemplate(t, app, "echoserver:blue", "0")
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCancelled)
		require.Eventually(t, func() bool {
			return b.get(t, app).Status.CanaryRevision == ""
		}, time.Minute, 100*time.Millisecond, "the cancelled release ends")
		assert.NotContains(t, b.getIstio(t, "VirtualService", app).GetAnnotations(), traffic.AnnotationOriginalHTTP)
		assert.Equal(t, before.Object["spec"], b.getIstio(t, "VirtualService", app).Object["spec"], "the user's routes exactly")
		assert.Equal(t, origSelector, b.selector(t, app))
	})

	t.Run("to DestinationRule subsets, completed", func(t *testing.T) {
		const app = "mesh-subsets"
		b.app(t, app)
		b.create(t,
			istioObject(t, "DestinationRule", b.ns, app, `{"host": "mesh-subsets", "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}},
				"subsets": [{"name": "stable", "labels": {"app": "mesh-subsets"}}, {"name": "canary", "labels": {"app": "mesh-subsets"}}]}`),
			istioObject(t, "VirtualService", b.ns, app, `{"hosts": ["mesh-subsets"], "http": [{"name": "primary", "route": [
				{"destination": {"host": "mesh-subsets", "subset": "stable"}, "weight": 100},
				{"destination": {"host": "mesh-subsets", "subset": "canary"}, "weight": 0}]}]}`))
		beforeDR, beforeVS := b.getIstio(t, "DestinationRule", app), b.getIstio(t, "VirtualService", app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(2)), Traffic: ptr.To("30%"), Analysis: fixtures.Analysis("error-rate")},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Istio: &v1alpha1.IstioTrafficRouting{
				VirtualService:  v1alpha1.IstioVirtualService{Name: app},
				DestinationRule: &v1alpha1.IstioDestinationRule{Name: app, StableSubsetName: "stable", CanarySubsetName: "canary"},
			}}},
		}})
		origSelector := b.selector(t, app)
		b.setTemplate(t, app, "echoserver:green", "0")

		ro := b.waitStep(t, app, 1, v1alpha1.StepMetricsAnalysis, time.Minute)
		blue, green := stableAndCanary(ro)
		assert.Equal(t, []map[string]int64{{app + "/stable": 70, app + "/canary": 30}}, b.vsWeights(t, app))
		assert.Equal(t, origSelector, b.selector(t, app), "the Service is not pinned: the subsets select the revisions")
		assert.True(t, b.absent(t, &corev1.Service{}, app+"-canary"), "no canary Service with subsets")
		require.Eventually(t, func() bool {
			split := b.sim.Snapshot().Entry(trafficsim.KindVirtualService, app)
			g := split.All[trafficsim.Backend{Service: app, Revision: green}]
			return g > 0.29 && g < 0.31 && split.All[trafficsim.Backend{Service: app, Revision: blue}] > 0.69
		}, 10*time.Second, 200*time.Millisecond, "30%% of requests reach green through the canary subset")

		b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseCompleted)
		b.waitPods(t, app, map[string]int{green: 5})
		require.Eventually(t, func() bool {
			_, pinned := b.getIstio(t, "DestinationRule", app).GetAnnotations()[traffic.AnnotationOriginalSubsets]
			return !pinned
		}, time.Minute, 200*time.Millisecond, "the subsets are restored once blue's pods are gone")
		assert.Equal(t, beforeDR.Object["spec"], b.getIstio(t, "DestinationRule", app).Object["spec"], "the user's subsets exactly")
		assert.Equal(t, beforeVS.Object["spec"], b.getIstio(t, "VirtualService", app).Object["spec"], "the user's routes exactly")
	})
}
