package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/job"
	"github.com/promgate/promgate/test/testbed"
)

// startAnalysisControllers runs the analysis controllers in the test process against cfg,
// with no default Prometheus: these suites measure web endpoints and Jobs.
func startAnalysisControllers(t *testing.T, cfg *rest.Config, logDir string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(logDir, "promgate-controller.log"))
	require.NoError(t, err)
	t.Cleanup(func() { logFile.Close() })
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testbed.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 zap.New(zap.WriteTo(logFile), zap.UseDevMode(true)),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	require.NoError(t, err)
	_, err = analysis.SetupWithManager(mgr, analysis.Options{Workers: 8, Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// applyYAML creates the object doc describes, as kubectl apply would for a new one.
func applyYAML(t *testing.T, c client.Client, doc string, obj client.Object) {
	t.Helper()
	require.NoError(t, yaml.UnmarshalStrict([]byte(doc), obj))
	require.NoError(t, c.Create(context.Background(), obj))
}

// runOfTemplate is the run a Rollout would build from a template: its metrics, with args.
func runOfTemplate(ns, name string, tmpl *v1alpha1.AnalysisTemplate, args ...string) *v1alpha1.AnalysisRun {
	run := &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AnalysisRunSpec{
			Metrics:   tmpl.Spec.Metrics,
			Templates: []v1alpha1.AnalysisTemplateRef{{Name: tmpl.Name}},
		},
	}
	for i := 0; i < len(args); i += 2 {
		run.Spec.Args = append(run.Spec.Args, v1alpha1.Argument{Name: args[i], Value: ptr.To(args[i+1])})
	}
	return run
}

// TestArgoWebMetricWithAJSONObject: a web endpoint answering a JSON object decides a run by
// a condition on its fields, as Argo Rollouts' web metrics do.
func TestArgoWebMetricWithAJSONObject(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	startAnalysisControllers(t, cp.Config, cp.LogDir)
	c := cp.Client
	ctx := context.Background()
	suites := map[string]map[string]any{
		"healthy":  {"ok": true, "successPercent": 0.97, "checks": []string{"cart", "payment"}},
		"degraded": {"ok": true, "successPercent": 0.61},
		"down":     {"ok": false, "successPercent": 0.0},
	}
	addr := testbed.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		suite, ok := suites[strings.TrimPrefix(r.URL.Path, "/suites/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		require.NoError(t, json.NewEncoder(w).Encode(map[string]any{"suite": suite}))
	}))
	var tmpl v1alpha1.AnalysisTemplate
	applyYAML(t, c, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: synthetic-checks, namespace: default}
spec:
  args:
  - name: base-url
  - name: suite
  metrics:
  - name: synthetics
    interval: 1s
    count: 2
    successCondition: result.ok && result.successPercent >= 0.9
    provider:
      web:
        url: '{{args.base-url}}/suites/{{args.suite}}'
        jsonPath: '{$.suite}'
        timeoutSeconds: 5
`, &tmpl)
	require.Eventually(t, func() bool {
		var got v1alpha1.AnalysisTemplate
		return c.Get(ctx, client.ObjectKeyFromObject(&tmpl), &got) == nil && apimeta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionValid)
	}, 30*time.Second, 100*time.Millisecond, "the template's url is nothing but args, and it is Valid")

	for suite, want := range map[string]v1alpha1.AnalysisPhase{"healthy": v1alpha1.AnalysisPhaseSuccessful, "degraded": v1alpha1.AnalysisPhaseFailed, "down": v1alpha1.AnalysisPhaseFailed} {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			run := runOfTemplate("default", "synthetics-"+suite, &tmpl, "base-url", "http://"+addr, "suite", suite)
			require.NoError(t, c.Create(ctx, run))
			got := waitCompleted(t, c, run, time.Minute)
			assert.Equal(t, want, got.Status.Phase, got.Status.Message)
			m := got.Status.MetricResults[0].Measurements[0]
			assert.Contains(t, m.Value, `"successPercent":`, "the value shows the JSON the condition read")
			if want == v1alpha1.AnalysisPhaseFailed {
				assert.Contains(t, got.Status.Message, `successCondition "result.ok && result.successPercent >= 0.9" is false`)
			} else {
				assert.Equal(t, int32(2), got.Status.MetricResults[0].Successful)
			}
		})
	}
}

// TestArgoTemplateWithArgsInCountAndInitialDelay: an Argo-style template whose count and
// initialDelay come from args measures that many times, that late.
func TestArgoTemplateWithArgsInCountAndInitialDelay(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	startAnalysisControllers(t, cp.Config, cp.LogDir)
	c := cp.Client
	addr := testbed.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data": {"ratio": 0.998}}`))
	}))
	var tmpl v1alpha1.AnalysisTemplate
	applyYAML(t, c, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: args-everywhere, namespace: default}
spec:
  args:
  - name: url
  - name: count
    value: "10"
  - name: initial-delay
    value: 1m
  - name: min
    value: "0.99"
  metrics:
  - name: ratio
    interval: 1s
    count: '{{args.count}}'
    initialDelay: '{{args.initial-delay}}'
    failureLimit: -1
    consecutiveSuccessLimit: '{{args.count}}'
    successCondition: result >= {{args.min}}
    provider:
      web:
        url: '{{args.url}}'
        jsonPath: '{$.data.ratio}'
`, &tmpl)
	run := runOfTemplate("default", "args", &tmpl, "url", "http://"+addr+"/ratio", "count", "3", "initial-delay", "4s", "min", "0.99")
	require.NoError(t, c.Create(context.Background(), run))
	got := waitCompleted(t, c, run, time.Minute)
	require.Equal(t, v1alpha1.AnalysisPhaseSuccessful, got.Status.Phase, got.Status.Message)
	mr := got.Status.MetricResults[0]
	assert.Equal(t, int32(3), mr.Count, "count from the run's arg, not the template's 10")
	require.Len(t, mr.Measurements, 3)
	assert.Equal(t, 4*time.Second, mr.Measurements[0].StartedAt.Sub(got.Status.StartedAt.Time), "initialDelay from the run's arg")
	for i := 1; i < 3; i++ {
		assert.Equal(t, time.Second, mr.Measurements[i].StartedAt.Sub(mr.Measurements[i-1].StartedAt.Time))
	}
	assert.Equal(t, "0.998", mr.Measurements[0].Value, "a number is still a number")
	assert.Contains(t, mr.Message, "3 consecutive successes")
}

// TestJobMetricOnTheBed: a job metric's Job runs on the simulated cluster (kwok completes
// its pod; the Job controller marks it) and decides the measurement; a Job that cannot
// run fails by its activeDeadlineSeconds. Each run's Jobs are owned by it and go when it
// ends.
func TestJobMetricOnTheBed(t *testing.T) {
	cl := testbed.StartCluster(t)
	startAnalysisControllers(t, cl.Config, cl.LogDir)
	c := cl.Client
	ctx := context.Background()
	var tmpl v1alpha1.AnalysisTemplate
	applyYAML(t, c, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke-test, namespace: default}
spec:
  args:
  - name: node-selector
  metrics:
  - name: smoke
    provider:
      job:
        metadata:
          labels: {suite: smoke}
        spec:
          backoffLimit: 0
          activeDeadlineSeconds: 20
          template:
            spec:
              restartPolicy: Never
              nodeSelector: {type: '{{args.node-selector}}'}
              containers:
              - name: smoke
                image: curlimages/curl:8.10.1
                args: [-fsS, http://checkout.default.svc/health]
`, &tmpl)
	for _, tc := range []struct {
		name    string
		node    string
		want    v1alpha1.AnalysisPhase
		message string
	}{
		{"completes", "kwok", v1alpha1.AnalysisPhaseSuccessful, "completed"},
		{"never-scheduled", "nowhere", v1alpha1.AnalysisPhaseFailed, "DeadlineExceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := runOfTemplate("default", "smoke-"+tc.name, &tmpl, "node-selector", tc.node)
			require.NoError(t, c.Create(ctx, run))

			var jobs batchv1.JobList
			require.Eventually(t, func() bool {
				return c.List(ctx, &jobs, client.InNamespace("default"), client.MatchingLabels{"suite": "smoke"}) == nil &&
					slicesContainsOwner(jobs.Items, run.Name)
			}, 30*time.Second, 100*time.Millisecond, "the measurement's Job, owned by the run")

			got := waitCompleted(t, c, run, 2*time.Minute)
			assert.Equal(t, tc.want, got.Status.Phase, got.Status.Message)
			m := got.Status.MetricResults[0].Measurements[0]
			assert.Equal(t, tc.want, m.Phase)
			assert.Contains(t, got.Status.MetricResults[0].Message, tc.message)

			require.Eventually(t, func() bool {
				var left batchv1.JobList
				if c.List(ctx, &left, client.InNamespace("default"), client.MatchingLabels{job.RunUIDLabel: string(got.UID)}) != nil {
					return false
				}
				for _, j := range left.Items {
					if j.DeletionTimestamp == nil {
						return false
					}
				}
				return true
			}, 30*time.Second, 200*time.Millisecond, "the run's Jobs are deleted when it ends")
		})
	}
	t.Run("bad templates never run a Job", func(t *testing.T) {
		t.Parallel()
		bad := tmpl.DeepCopy()
		bad.Spec.Metrics[0].Provider.Job.Spec.Template.Spec.Containers = nil
		run := runOfTemplate("default", "smoke-no-containers", bad, "node-selector", "kwok")
		require.NoError(t, c.Create(ctx, run))
		got := waitCompleted(t, c, run, 30*time.Second)
		assert.Equal(t, v1alpha1.AnalysisPhaseError, got.Status.Phase)
		assert.Contains(t, got.Status.Message, "metrics[smoke].provider.job.spec.template.spec.containers: a Job needs at least one container")
		var jobs batchv1.JobList
		require.NoError(t, c.List(ctx, &jobs, client.InNamespace("default"), client.MatchingLabels{job.RunUIDLabel: string(got.UID)}))
		assert.Empty(t, jobs.Items, "nothing measured, no Job")
	})
}

func slicesContainsOwner(jobs []batchv1.Job, run string) bool {
	for _, j := range jobs {
		for _, o := range j.OwnerReferences {
			if o.Kind == "AnalysisRun" && o.Name == run && ptr.Deref(o.Controller, false) {
				return true
			}
		}
	}
	return false
}
