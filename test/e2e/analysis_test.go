package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
)

// analysisBed is a control plane, a Prometheus scraping a gauge the test moves, and the
// analysis controllers running in the test process.
type analysisBed struct {
	cp     *testbed.ControlPlane
	prom   *testbed.Prometheus
	gauges *prometheus.GaugeVec
}

func startAnalysisBed(t *testing.T) *analysisBed {
	t.Helper()
	cp := testbed.StartControlPlane(t)
	gauges := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promgate_e2e_success_ratio", Help: "A ratio the test moves."}, []string{"service"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(gauges)
	exporter := testbed.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{Targets: []string{exporter}})
	b := &analysisBed{cp: cp, prom: prom, gauges: gauges}

	logFile, err := os.Create(filepath.Join(cp.LogDir, "promgate-controller.log"))
	require.NoError(t, err)
	t.Cleanup(func() { logFile.Close() })
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 testbed.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 zap.New(zap.WriteTo(logFile), zap.UseDevMode(true)),
		// Several suites start a manager in one test process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	require.NoError(t, err)
	_, err = analysis.SetupWithManager(mgr, analysis.Options{PrometheusAddress: prom.URL, Workers: 8, Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return b
}

// set moves the gauge and waits until Prometheus has scraped the new value.
func (b *analysisBed) set(t *testing.T, service string, v float64) {
	t.Helper()
	b.gauges.WithLabelValues(service).Set(v)
	c, err := api.NewClient(api.Config{Address: b.prom.URL})
	require.NoError(t, err)
	q := fmt.Sprintf(`promgate_e2e_success_ratio{service=%q}`, service)
	require.Eventually(t, func() bool {
		res, _, _, err := promv1.NewAPI(c).Query(context.Background(), q, time.Now())
		vec, ok := res.(model.Vector)
		return err == nil && ok && len(vec) == 1 && float64(vec[0].Value) == v
	}, 30*time.Second, 200*time.Millisecond, "Prometheus scrapes %s = %v", q, v)
}

func (b *analysisBed) namespace(t *testing.T, name string) string {
	t.Helper()
	require.NoError(t, b.cp.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

func successRateMetric(service string) v1alpha1.Metric {
	return v1alpha1.Metric{
		Name:             "success-rate",
		Interval:         "1s",
		Count:            ptr.To(intstr.FromInt32(3)),
		SuccessCondition: "result[0] >= 0.95",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
			Query: fmt.Sprintf(`promgate_e2e_success_ratio{service=%q}`, service),
		}},
	}
}

func analysisRun(ns, name string, metrics ...v1alpha1.Metric) *v1alpha1.AnalysisRun {
	return &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.AnalysisRunSpec{Metrics: metrics, Templates: []v1alpha1.AnalysisTemplateRef{{Name: "success-rate"}}},
	}
}

// waitCompleted waits for the run's verdict and returns the run.
func waitCompleted(t *testing.T, c client.Client, run *v1alpha1.AnalysisRun, within time.Duration) *v1alpha1.AnalysisRun {
	t.Helper()
	var got v1alpha1.AnalysisRun
	ok := assert.Eventually(t, func() bool {
		return c.Get(context.Background(), client.ObjectKeyFromObject(run), &got) == nil && got.Status.Phase.Completed()
	}, within, 100*time.Millisecond)
	if !ok {
		t.Fatalf("run %s not completed within %s; status %+v", run.Name, within, got.Status)
	}
	return &got
}

func TestAnalysisRuns(t *testing.T) {
	b := startAnalysisBed(t)
	c := b.cp.Client
	ctx := context.Background()

	t.Run("Successful", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "successful")
		b.set(t, "healthy", 0.99)
		run := analysisRun(ns, "run", successRateMetric("healthy"))
		require.NoError(t, c.Create(ctx, run))
		got := waitCompleted(t, c, run, time.Minute)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, got.Status.Phase, got.Status.Message)
		mr := got.Status.MetricResults[0]
		assert.Equal(t, int32(3), mr.Count)
		assert.Equal(t, int32(3), mr.Successful)
		require.Len(t, mr.Measurements, 3)
		for i, m := range mr.Measurements {
			assert.Equal(t, "[0.99]", m.Value, "a vector shows as a list, as result[0] reads it")
			if i > 0 {
				assert.Equal(t, time.Second, m.StartedAt.Sub(mr.Measurements[i-1].StartedAt.Time), "measurements one interval apart")
			}
		}
		assert.True(t, apimeta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionValid))
		assertEvent(t, c, ns, "AnalysisRunSuccessful")
	})

	t.Run("Failed", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "failed")
		b.set(t, "broken", 0.8)
		run := analysisRun(ns, "run", successRateMetric("broken"))
		require.NoError(t, c.Create(ctx, run))
		got := waitCompleted(t, c, run, time.Minute)
		assert.Equal(t, v1alpha1.AnalysisPhaseFailed, got.Status.Phase)
		assert.Contains(t, got.Status.Message, `metric "success-rate" Failed`)
		assert.Contains(t, got.Status.Message, "0.8")
		assert.Contains(t, got.Status.Message, `successCondition "result[0] >= 0.95" is false`)
		assert.Equal(t, int32(1), got.Status.MetricResults[0].Failed, "failureLimit 0: the first failure decides")
		assertEvent(t, c, ns, "AnalysisRunFailed")
	})

	t.Run("InconclusiveOnNoData", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "nodata")
		run := analysisRun(ns, "run", successRateMetric("nobody-sends-this"))
		require.NoError(t, c.Create(ctx, run))
		got := waitCompleted(t, c, run, time.Minute)
		assert.Equal(t, v1alpha1.AnalysisPhaseInconclusive, got.Status.Phase, "no data must never be a success")
		assert.Contains(t, got.Status.MetricResults[0].Measurements[0].Message, "no data")
	})

	t.Run("InvalidSpecsNeverMeasure", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "invalid")
		badQuery := successRateMetric("x")
		badQuery.Provider.Prometheus.Query = "sum(rate(http_requests_total[1m]"
		badCondition := successRateMetric("x")
		badCondition.SuccessCondition = "result[0] >="
		missingArg := successRateMetric("x")
		missingArg.Provider.Prometheus.Query = `promgate_e2e_success_ratio{service="{{args.service}}"}`
		for name, tc := range map[string]struct {
			metric v1alpha1.Metric
			field  string
		}{
			"bad-promql":    {badQuery, "metrics[success-rate].provider.prometheus.query"},
			"bad-condition": {badCondition, "metrics[success-rate].successCondition"},
			"missing-arg":   {missingArg, `argument "service" is not defined`},
		} {
			run := analysisRun(ns, name, tc.metric)
			require.NoError(t, c.Create(ctx, run))
			got := waitCompleted(t, c, run, 30*time.Second)
			assert.Equal(t, v1alpha1.AnalysisPhaseError, got.Status.Phase, name)
			cond := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionValid)
			require.NotNil(t, cond, name)
			assert.Equal(t, metav1.ConditionFalse, cond.Status, name)
			assert.Contains(t, cond.Message, tc.field, name)
			assert.Empty(t, got.Status.MetricResults, "%s: nothing measured", name)
		}
	})

	t.Run("SecretArgsNeverInStatus", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "secrets")
		const token = "s3cr3t-t0ken-9f2c"
		require.NoError(t, c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "analysis"},
			StringData: map[string]string{"token": token},
		}))
		b.set(t, "with-secret", 0.97)
		m := successRateMetric("with-secret")
		m.Provider.Prometheus.Query = `promgate_e2e_success_ratio{service="with-secret", instance!="{{args.token}}"}`
		// The second metric fails in the provider with the secret in its URL: the error
		// message must come back masked.
		leaky := v1alpha1.Metric{Name: "leaky", Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{
			URL: "http://127.0.0.1:1/{{args.token}}", JSONPath: "{$.v}",
		}}, ConsecutiveErrorLimit: ptr.To(intstr.FromInt32(0))}
		run := analysisRun(ns, "run", m, leaky)
		run.Spec.DryRun = []v1alpha1.DryRun{{MetricName: "leaky"}}
		run.Spec.Args = []v1alpha1.Argument{{Name: "token", ValueFrom: &v1alpha1.ArgumentValueFrom{
			SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "analysis", Key: "token"},
		}}}
		require.NoError(t, c.Create(ctx, run))
		got := waitCompleted(t, c, run, time.Minute)
		assert.Equal(t, v1alpha1.AnalysisPhaseSuccessful, got.Status.Phase, "the secret arg renders into a working query; the dry-run error does not decide")
		raw, err := json.Marshal(got.Status)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), token)
		assert.Contains(t, string(raw), "*****", "the provider error was recorded, masked")
		var evs eventsv1.EventList
		require.NoError(t, c.List(ctx, &evs, client.InNamespace(ns)))
		for _, e := range evs.Items {
			assert.NotContains(t, e.Note, token)
		}
	})

	t.Run("TemplatesGetAValidCondition", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "templates")
		good := &v1alpha1.AnalysisTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "good"},
			Spec: v1alpha1.AnalysisTemplateSpec{
				Args:    []v1alpha1.Argument{{Name: "service"}},
				Metrics: []v1alpha1.Metric{successRateMetric("{{args.service}}")},
			},
		}
		bad := good.DeepCopy()
		bad.Name = "bad"
		bad.Spec.Metrics[0].Provider.Prometheus.Query = "rate(x[5m]"
		require.NoError(t, c.Create(ctx, good))
		require.NoError(t, c.Create(ctx, bad))
		for _, tc := range []struct {
			obj    *v1alpha1.AnalysisTemplate
			status metav1.ConditionStatus
			msg    string
		}{{good, metav1.ConditionTrue, "queries parse"}, {bad, metav1.ConditionFalse, "metrics[success-rate].provider.prometheus.query"}} {
			var got v1alpha1.AnalysisTemplate
			require.Eventually(t, func() bool {
				return c.Get(ctx, client.ObjectKeyFromObject(tc.obj), &got) == nil &&
					apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionValid) != nil
			}, 30*time.Second, 100*time.Millisecond)
			cond := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionValid)
			assert.Equal(t, tc.status, cond.Status, tc.obj.Name)
			assert.Contains(t, cond.Message, tc.msg)
		}
		out := kubectl(t, b.cp, "get", "at", "-n", ns)
		assert.Regexp(t, `(?m)^bad\s+False`, out)
		assert.Regexp(t, `(?m)^good\s+True`, out)

		shared := &v1alpha1.ClusterAnalysisTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "shared-broken"},
			Spec:       *bad.Spec.DeepCopy(),
		}
		shared.Spec.Metrics[0].Provider.Prometheus.Query = successRateMetric("x").Provider.Prometheus.Query
		shared.Spec.Metrics[0].FailureCondition = "result[0] < "
		require.NoError(t, c.Create(ctx, shared))
		require.Eventually(t, func() bool {
			var got v1alpha1.ClusterAnalysisTemplate
			if c.Get(ctx, client.ObjectKeyFromObject(shared), &got) != nil {
				return false
			}
			cond := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionValid)
			return cond != nil && cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "metrics[success-rate].failureCondition")
		}, 30*time.Second, 100*time.Millisecond, "a ClusterAnalysisTemplate gets its Valid condition too")
	})

	t.Run("FinishedRunsExpire", func(t *testing.T) {
		t.Parallel()
		ns := b.namespace(t, "ttl")
		b.set(t, "ttl", 1)
		m := successRateMetric("ttl")
		m.Count = ptr.To(intstr.FromInt32(1))
		run := analysisRun(ns, "run", m)
		run.Spec.TTLSecondsAfterFinished = ptr.To[int32](2)
		require.NoError(t, c.Create(ctx, run))
		waitCompleted(t, c, run, 30*time.Second)
		require.Eventually(t, func() bool {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(run), &v1alpha1.AnalysisRun{}))
		}, 30*time.Second, 200*time.Millisecond, "deleted after its TTL")
	})
}

// TestAnalysisRunErrorsWhenPrometheusStops stops the real Prometheus mid-run: measurements
// turn Error and, past consecutiveErrorLimit, the run ends Error; never Successful.
func TestAnalysisRunErrorsWhenPrometheusStops(t *testing.T) {
	b := startAnalysisBed(t)
	c := b.cp.Client
	ctx := context.Background()
	b.set(t, "outage", 0.99)
	m := successRateMetric("outage")
	m.Count = ptr.To(intstr.FromInt32(30))
	m.ConsecutiveErrorLimit = ptr.To(intstr.FromInt32(2))
	m.Provider.Prometheus.Timeout = ptr.To(intstr.FromString("2s"))
	run := analysisRun("default", "outage", m)
	require.NoError(t, c.Create(ctx, run))

	var got v1alpha1.AnalysisRun
	require.Eventually(t, func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(run), &got) == nil &&
			len(got.Status.MetricResults) == 1 && got.Status.MetricResults[0].Successful >= 2
	}, time.Minute, 100*time.Millisecond, "measuring before the outage")
	b.prom.Stop()

	final := waitCompleted(t, c, run, time.Minute)
	assert.Equal(t, v1alpha1.AnalysisPhaseError, final.Status.Phase, final.Status.Message)
	mr := final.Status.MetricResults[0]
	assert.Equal(t, int32(3), mr.ConsecutiveError, "the third consecutive error exceeds the limit of 2")
	assert.Less(t, mr.Count, int32(30), "errors do not count toward count")
	assert.Contains(t, final.Status.Message, "consecutive errors exceed consecutiveErrorLimit 2")
	last := mr.Measurements[len(mr.Measurements)-1]
	assert.Equal(t, v1alpha1.AnalysisPhaseError, last.Phase)
	assert.True(t, strings.Contains(last.Message, "connection refused") || strings.Contains(last.Message, "timed out"), last.Message)
}

func assertEvent(t *testing.T, c client.Client, ns, reason string) {
	t.Helper()
	assert.Eventually(t, func() bool {
		var evs eventsv1.EventList
		if c.List(context.Background(), &evs, client.InNamespace(ns)) != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == reason {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "event %s in %s", reason, ns)
}
