package e2e

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
)

// TestControllerProcess runs `promgate controller` as its own process, as a user holding
// only config/rbac/role.yaml, and checks a run end to end plus the controller's metrics.
func TestControllerProcess(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	gauges := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promgate_e2e_success_ratio", Help: "A ratio the test moves."}, []string{"service"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(gauges)
	gauges.WithLabelValues("checkout").Set(0.98)
	exporter := testbed.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{Targets: []string{exporter}})
	b := &analysisBed{cp: cp, prom: prom, gauges: gauges}
	b.set(t, "checkout", 0.98)
	ctrl := testbed.StartPromgate(t, cp, "--prometheus-address="+prom.URL)

	// The service name comes from a Secret: the controller's role may only get Secrets.
	require.NoError(t, cp.Client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "analysis-args"},
		StringData: map[string]string{"service": "checkout"},
	}))
	run := analysisRun("default", "checkout", successRateMetric("{{args.service}}"))
	run.Spec.Args = []v1alpha1.Argument{{Name: "service", ValueFrom: &v1alpha1.ArgumentValueFrom{
		SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "analysis-args", Key: "service"},
	}}}
	require.NoError(t, cp.Client.Create(context.Background(), run))
	got := waitCompleted(t, cp.Client, run, time.Minute)
	assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, got.Status.Phase, got.Status.Message)

	resp, err := http.Get(ctrl.MetricsURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metrics := string(body)
	assert.Contains(t, metrics, `promgate_analysis_measurements_total{metric="success-rate",phase="Successful",template="success-rate"} 3`)
	assert.Contains(t, metrics, `promgate_analysis_metric_last_value{metric="success-rate",template="success-rate"} 0.98`)
	assert.Contains(t, metrics, `promgate_analysis_runs_completed_total{phase="Successful",template="success-rate"} 1`)
	assert.Contains(t, metrics, `promgate_provider_queries_total{outcome="success",provider="prometheus"} 3`)
	assert.Contains(t, metrics, `promgate_provider_query_duration_seconds_bucket`)
}

// TestControllerRestartResumes kills the controller process (SIGKILL, as a crash) in the
// middle of a run and starts it again: the run goes on from its status, with no tick
// measured twice and none skipped.
func TestControllerRestartResumes(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	gauges := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promgate_e2e_success_ratio", Help: "A ratio the test moves."}, []string{"service"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(gauges)
	exporter := testbed.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{Targets: []string{exporter}})
	b := &analysisBed{cp: cp, prom: prom, gauges: gauges}
	b.set(t, "restart", 0.99)
	ctrl := testbed.StartPromgate(t, cp, "--prometheus-address="+prom.URL)

	m := successRateMetric("restart")
	m.Count = ptr.To(intstr.FromInt32(8))
	run := analysisRun("default", "restart", m)
	ctx := context.Background()
	require.NoError(t, cp.Client.Create(ctx, run))
	var mid v1alpha1.AnalysisRun
	require.Eventually(t, func() bool {
		return cp.Client.Get(ctx, client.ObjectKeyFromObject(run), &mid) == nil &&
			len(mid.Status.MetricResults) == 1 && mid.Status.MetricResults[0].Count >= 3
	}, time.Minute, 50*time.Millisecond)
	ctrl.Kill()
	time.Sleep(2500 * time.Millisecond)
	require.NoError(t, ctrl.Start())

	got := waitCompleted(t, cp.Client, run, time.Minute)
	assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, got.Status.Phase, got.Status.Message)
	mr := got.Status.MetricResults[0]
	assert.Equal(t, int32(8), mr.Count)
	require.Len(t, mr.Measurements, 8)
	for i := 1; i < len(mr.Measurements); i++ {
		assert.Equal(t, time.Second, mr.Measurements[i].StartedAt.Sub(mr.Measurements[i-1].StartedAt.Time),
			"tick %d follows tick %d by one interval: none repeated, none skipped across the restart", i, i-1)
	}
}
