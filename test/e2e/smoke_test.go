package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/test/testbed"
)

// TestSmoke proves the bed is real: the Deployment controller, the scheduler and kwok run
// pods; Prometheus scrapes what the test exports; an alerting rule reaches a webhook
// through Alertmanager; the CRDs are served; the node survives past the heartbeat window.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	started := time.Now()
	cluster := testbed.StartCluster(t)
	c := cluster.Client

	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "echoserver"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](5),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "echoserver"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "echoserver"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echoserver", Image: "echoserver:blue"}}},
			},
		},
	}

	t.Run("DeploymentBecomesReady", func(t *testing.T) {
		require.NoError(t, c.Create(ctx, dep))
		waitDeploymentRolled(ctx, t, c, dep, "echoserver:blue")
	})

	t.Run("ImageChangeRolls", func(t *testing.T) {
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(dep), dep))
		dep.Spec.Template.Spec.Containers[0].Image = "echoserver:green"
		require.NoError(t, c.Update(ctx, dep))
		waitDeploymentRolled(ctx, t, c, dep, "echoserver:green")

		var rsList appsv1.ReplicaSetList
		require.NoError(t, c.List(ctx, &rsList, client.InNamespace("default"), client.MatchingLabels{"app": "echoserver"}))
		images := map[string]int32{}
		for _, rs := range rsList.Items {
			images[rs.Spec.Template.Spec.Containers[0].Image] = rs.Status.Replicas
		}
		assert.Equal(t, map[string]int32{"echoserver:blue": 0, "echoserver:green": 5}, images, "the old ReplicaSet is scaled away")
	})

	t.Run("CRDsAreServed", func(t *testing.T) {
		route := &gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "echoserver"},
			Spec: gatewayv1.HTTPRouteSpec{Rules: []gatewayv1.HTTPRouteRule{{
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: "echoserver", Port: ptr.To[gatewayv1.PortNumber](80)},
					Weight:                 ptr.To[int32](100),
				}}},
			}}},
		}
		require.NoError(t, c.Create(ctx, route), "Gateway API HTTPRoute CRD installed")
		for _, name := range []string{"analysistemplates", "clusteranalysistemplates", "analysisruns", "rollouts"} {
			assert.True(t, servesResource(t, cluster, name), "promgate.io/v1alpha1 serves %s", name)
		}
	})

	// The exporter and the webhook receiver are the test's own servers on loopback.
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "promgate_smoke_value", Help: "A value the smoke test sets."})
	reg := prometheus.NewRegistry()
	reg.MustRegister(gauge)
	gauge.Set(42)
	exporter := testbed.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	webhooks := make(chan webhookPayload, 16)
	receiver := testbed.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		webhooks <- p
	}))
	am := testbed.StartAlertmanager(t, testbed.AlertmanagerOptions{WebhookURL: "http://" + receiver + "/alerts"})
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{
		Targets:       []string{exporter},
		Alertmanagers: []string{am.Address},
		Rules: map[string]string{"smoke.rules.yml": `groups:
- name: smoke
  rules:
  - alert: SmokeValueHigh
    expr: promgate_smoke_value > 100
    labels:
      severity: critical
      team: release
    annotations:
      summary: the smoke value is {{ $value }}
`},
	})
	promClient, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	promAPI := promv1.NewAPI(promClient)

	t.Run("PrometheusScrapesTheExporter", func(t *testing.T) {
		require.Eventually(t, func() bool {
			v, _, _, err := promAPI.Query(ctx, "promgate_smoke_value", time.Now())
			if err != nil {
				return false
			}
			vec, ok := v.(model.Vector)
			return ok && len(vec) == 1 && float64(vec[0].Value) == 42 && string(vec[0].Metric["instance"]) == exporter
		}, time.Minute, 250*time.Millisecond, "Prometheus returns the value 42 the test set")
	})

	t.Run("AlertReachesTheWebhook", func(t *testing.T) {
		gauge.Set(150)
		select {
		case p := <-webhooks:
			assert.Equal(t, "4", p.Version)
			assert.Equal(t, "firing", p.Status)
			require.NotEmpty(t, p.Alerts)
			labels := p.Alerts[0].Labels
			assert.Equal(t, "SmokeValueHigh", labels["alertname"])
			assert.Equal(t, "critical", labels["severity"])
			assert.Equal(t, "release", labels["team"])
			assert.Equal(t, exporter, labels["instance"])
			assert.Equal(t, "the smoke value is 150", p.Alerts[0].Annotations["summary"])
		case <-time.After(time.Minute):
			t.Fatal("Alertmanager delivered no webhook within a minute")
		}
	})

	t.Run("NodeStaysReadyPastTheHeartbeatWindow", func(t *testing.T) {
		// Without heartbeats the node lifecycle controller marks the node NotReady about 40 s
		// after start and evicts nothing but flips every pod's Ready to False.
		if wait := 75*time.Second - time.Since(started); wait > 0 {
			time.Sleep(wait)
		}
		var node corev1.Node
		require.NoError(t, c.Get(ctx, types.NamespacedName{Name: cluster.NodeName}, &node))
		assert.True(t, testbed.NodeReady(&node), "node %s Ready after %s", cluster.NodeName, time.Since(started).Round(time.Second))
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(dep), dep))
		assert.Equal(t, int32(5), dep.Status.ReadyReplicas, "all pods still Ready")
	})
}

// webhookPayload is the part of Alertmanager's webhook (version 4) the test asserts.
type webhookPayload struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Alerts  []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// waitDeploymentRolled waits until every replica runs image and is Ready, as reported by the
// real Deployment controller.
func waitDeploymentRolled(ctx context.Context, t *testing.T, c client.Client, dep *appsv1.Deployment, image string) {
	t.Helper()
	var last appsv1.Deployment
	ok := assert.Eventually(t, func() bool {
		if err := c.Get(ctx, client.ObjectKeyFromObject(dep), &last); err != nil {
			return false
		}
		s := last.Status
		return s.ObservedGeneration == last.Generation && s.UpdatedReplicas == 5 && s.ReadyReplicas == 5 &&
			s.AvailableReplicas == 5 && s.Replicas == 5
	}, 2*time.Minute, 200*time.Millisecond)
	if !ok {
		t.Fatalf("deployment %s not rolled to %s: %+v", dep.Name, image, last.Status)
	}
	var pods corev1.PodList
	require.NoError(t, c.List(ctx, &pods, client.InNamespace(dep.Namespace), client.MatchingLabels{"app": "echoserver"}))
	ready := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image && testbed.PodReady(&p) {
			ready++
		}
	}
	assert.Equal(t, 5, ready, "Ready pods running %s", image)
}

func servesResource(t *testing.T, cluster *testbed.Cluster, name string) bool {
	list, err := cluster.Clientset.Discovery().ServerResourcesForGroupVersion("promgate.io/v1alpha1")
	require.NoError(t, err)
	for _, r := range list.APIResources {
		if r.Name == name {
			return true
		}
	}
	return false
}
