package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/testbin"
)

func promMetric(name string) v1alpha1.Metric {
	return v1alpha1.Metric{
		Name:             name,
		SuccessCondition: "result[0] >= 0.95",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
			Query: `sum(rate(http_requests_total{code!~"5.."}[1m])) / sum(rate(http_requests_total[1m]))`,
		}},
	}
}

func template(name string, mutate func(*v1alpha1.AnalysisTemplateSpec)) *v1alpha1.AnalysisTemplate {
	at := &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{promMetric("success-rate")}},
	}
	if mutate != nil {
		mutate(&at.Spec)
	}
	return at
}

func rollout(name string, mutate func(*v1alpha1.RolloutSpec)) *v1alpha1.Rollout {
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1alpha1.RolloutSpec{
			WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"},
			Strategy: v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{
				Steps: []v1alpha1.RolloutStep{
					{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("0%")},
					{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("10%"), Pause: &v1alpha1.RolloutPause{}},
					{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
				},
				TrafficRoutings: []v1alpha1.TrafficRouting{{Service: "echoserver", Ingress: &v1alpha1.IngressTrafficRouting{Name: "echoserver"}}},
			}},
		},
	}
	if mutate != nil {
		mutate(&ro.Spec)
	}
	return ro
}

// TestCRDValidation sends good and bad objects to a real API server: the OpenAPI schema
// and CEL rules must reject each bad one with a message naming the field, and accept the
// good ones (with defaults applied).
func TestCRDValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp := testbed.StartControlPlane(t)

	bad := []struct {
		name    string
		obj     client.Object
		wantErr []string
	}{
		{"count without interval", template("count-no-interval", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].Count = ptr.To(intstr.FromInt32(3))
		}), []string{"spec.metrics[0]", "count > 1 requires interval"}},
		{"no provider", template("no-provider", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].Provider = v1alpha1.MetricProvider{}
		}), []string{"spec.metrics[0].provider", "exactly one provider"}},
		{"two providers", template("two-providers", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].Provider.Web = &v1alpha1.WebMetric{URL: "http://x", JSONPath: "{$.v}"}
		}), []string{"spec.metrics[0].provider", "exactly one provider"}},
		{"bad noData", template("bad-nodata", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].NoData = "Ignore"
		}), []string{"spec.metrics[0].noData", "Unsupported value"}},
		{"failureLimit below -1", template("negative-limit", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].FailureLimit = ptr.To(intstr.FromInt32(-2))
		}), []string{"spec.metrics[0]", "failureLimit is -1 (disabled) or more"}},
		{"bad interval", template("bad-interval", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].Interval = "ten seconds"
		}), []string{"spec.metrics[0].interval"}},
		{"value and valueFrom", template("value-and-valuefrom", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Args = []v1alpha1.Argument{{Name: "token", Value: ptr.To("x"), ValueFrom: &v1alpha1.ArgumentValueFrom{
				SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "s", Key: "k"},
			}}}
		}), []string{"spec.args[0]", "mutually exclusive"}},
		{"duplicate metric names", template("duplicate-metrics", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics = append(s.Metrics, promMetric("success-rate"))
		}), []string{"spec.metrics[1]", "Duplicate value"}},
		{"no metrics", template("no-metrics", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics = nil
		}), []string{"spec", "at least one metric or one included template is required"}},
		{"an Argo provider beside another", template("two-with-datadog", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].Provider.Datadog = &apiextensionsv1.JSON{Raw: []byte(`{"query": "avg:errors{*}"}`)}
		}), []string{"spec.metrics[0].provider", "exactly one provider"}},
		{"two auth methods", template("two-auths", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Metrics[0].Provider.Prometheus.Auth = &v1alpha1.HTTPAuth{
				BearerTokenSecret: &v1alpha1.SecretKeySelector{Name: "s", Key: "token"},
				BasicAuth:         &v1alpha1.BasicAuth{Username: "u", PasswordSecret: v1alpha1.SecretKeySelector{Name: "s", Key: "p"}},
			}
		}), []string{"spec.metrics[0].provider.prometheus.auth", "at most one"}},
		{"traffic over 100%", rollout("traffic-120", func(s *v1alpha1.RolloutSpec) {
			s.Strategy.BlueGreen.Steps[1].Traffic = ptr.To("120%")
		}), []string{"spec.strategy.blueGreen.steps[1].traffic"}},
		{"both strategies", rollout("both-strategies", func(s *v1alpha1.RolloutSpec) {
			s.Strategy.Canary = s.Strategy.BlueGreen.DeepCopy()
		}), []string{"spec.strategy", "exactly one of blueGreen and canary"}},
		{"no strategy", rollout("no-strategy", func(s *v1alpha1.RolloutSpec) {
			s.Strategy = v1alpha1.RolloutStrategy{}
		}), []string{"spec.strategy", "exactly one of blueGreen and canary"}},
		{"no steps", rollout("no-steps", func(s *v1alpha1.RolloutSpec) {
			s.Strategy.BlueGreen.Steps = nil
		}), []string{"spec.strategy.blueGreen.steps"}},
		{"unsupported workload", rollout("daemonset", func(s *v1alpha1.RolloutSpec) {
			s.WorkloadRef.Kind = "DaemonSet"
		}), []string{"spec.workloadRef.kind", `supported values: "Deployment", "StatefulSet"`}},
		{"unsupported API version", rollout("extensions", func(s *v1alpha1.RolloutSpec) {
			s.WorkloadRef.APIVersion = "extensions/v1beta1"
		}), []string{"spec.workloadRef", "only apps/v1 Deployment and StatefulSet"}},
		{"ingress and gateway together", rollout("ingress-and-gateway", func(s *v1alpha1.RolloutSpec) {
			s.Strategy.BlueGreen.TrafficRoutings[0].Gateway = &v1alpha1.GatewayTrafficRouting{HTTPRouteName: "r"}
		}), []string{"spec.strategy.blueGreen.trafficRoutings[0]", "mutually exclusive"}},
		{"bad window policy", rollout("bad-window", func(s *v1alpha1.RolloutSpec) {
			s.ReleaseWindow = &v1alpha1.ReleaseWindow{Schedule: "0 1 * * *", Duration: metav1.Duration{Duration: time.Hour}, OnClose: "Continue"}
		}), []string{"spec.releaseWindow.onClose", "Unsupported value"}},
		{"arg with both sources", rollout("arg-both", func(s *v1alpha1.RolloutSpec) {
			s.Strategy.BlueGreen.Steps[1].Analysis = &v1alpha1.RolloutAnalysis{
				Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "success-rate"}},
				Args:      []v1alpha1.AnalysisRunArgument{{Name: "service", Value: ptr.To("a"), ValueFrom: &v1alpha1.AnalysisRunArgumentValueFrom{PodTemplateHashValue: "Canary"}}},
			}
		}), []string{"spec.strategy.blueGreen.steps[1].analysis.args[0]", "exactly one of value and valueFrom"}},
		{"empty alert matchers", rollout("empty-matchers", func(s *v1alpha1.RolloutSpec) {
			s.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{}}}
		}), []string{"spec.abortOn.alerts[0].matchers"}},
	}
	for _, tc := range bad {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			err := cp.Client.Create(ctx, tc.obj)
			require.Error(t, err, "the API server accepted a bad object")
			for _, want := range tc.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}

	t.Run("accepts a full template with defaults applied", func(t *testing.T) {
		at := template("full", func(s *v1alpha1.AnalysisTemplateSpec) {
			s.Args = []v1alpha1.Argument{{Name: "service"}, {Name: "token", ValueFrom: &v1alpha1.ArgumentValueFrom{
				SecretKeyRef: &v1alpha1.SecretKeySelector{Name: "prom", Key: "token"},
			}}}
			s.Metrics[0].Interval = "10s"
			s.Metrics[0].Count = ptr.To(intstr.FromInt32(5))
			s.Metrics[0].FailureCondition = "result[0] < 0.9"
			s.Metrics = append(s.Metrics, v1alpha1.Metric{
				Name: "p99", Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "http://latency/{{args.service}}", JSONPath: "{$.p99}"}},
			})
			s.DryRun = []v1alpha1.DryRun{{MetricName: "p99"}}
		})
		require.NoError(t, cp.Client.Create(ctx, at))
		var got v1alpha1.AnalysisTemplate
		require.NoError(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(at), &got))
		assert.Equal(t, v1alpha1.NoDataInconclusive, got.Spec.Metrics[0].NoData, "noData defaults to Inconclusive")
		assert.Equal(t, "GET", got.Spec.Metrics[1].Provider.Web.Method, "web method defaults to GET")
	})

	t.Run("accepts the Argo-style corpus lint passes", func(t *testing.T) {
		root, err := testbin.RepoRoot()
		require.NoError(t, err)
		files, err := filepath.Glob(filepath.Join(root, "cmd", "promgate", "testdata", "argo", "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, doc := range strings.Split(string(b), "\n---\n") {
				var obj unstructured.Unstructured
				require.NoError(t, yaml.Unmarshal([]byte(doc), &obj.Object))
				if obj.GetKind() == "AnalysisTemplate" {
					obj.SetNamespace("default")
				}
				require.NoError(t, cp.Client.Create(ctx, &obj), "%s: %s", filepath.Base(f), obj.GetName())
			}
		}
		var got v1alpha1.AnalysisTemplate
		require.NoError(t, cp.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "canary-tests"}, &got))
		require.NotNil(t, got.Spec.Metrics[1].Provider.Job)
		assert.Equal(t, "grafana/k6:{{args.k6-version}}", got.Spec.Metrics[1].Provider.Job.Spec.Template.Spec.Containers[0].Image, "the Job's spec is kept as written")
	})

	t.Run("accepts seed 000's blue-green rollout", func(t *testing.T) {
		ro := rollout("echoserver", func(s *v1alpha1.RolloutSpec) {
			s.ReleaseWindow = &v1alpha1.ReleaseWindow{Schedule: "0 1 * * *", Duration: metav1.Duration{Duration: 2 * time.Hour}}
			s.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`severity="critical"`, `service=~"echo.*"`}}}}
		})
		require.NoError(t, cp.Client.Create(ctx, ro))
		var got v1alpha1.Rollout
		require.NoError(t, cp.Client.Get(ctx, client.ObjectKeyFromObject(ro), &got))
		assert.Equal(t, "UTC", got.Spec.ReleaseWindow.TimeZone)
		assert.Equal(t, v1alpha1.WindowHold, got.Spec.ReleaseWindow.OnClose)
		assert.Equal(t, "nginx", got.Spec.Strategy.BlueGreen.TrafficRoutings[0].Ingress.ClassType)
	})

	t.Run("kubectl get rollout shows the seed's columns", func(t *testing.T) {
		out := kubectl(t, cp, "get", "rollout", "echoserver", "-n", "default")
		assert.Regexp(t, `^NAME\s+STATUS\s+STEP\s+STEP_STATE\s+MESSAGE\s+AGE\n`, out)
		out = kubectl(t, cp, "get", "ro,at", "-n", "default")
		assert.Contains(t, out, "rollout.promgate.io/echoserver")
		assert.Contains(t, out, "analysistemplate.promgate.io/full")
	})
}
