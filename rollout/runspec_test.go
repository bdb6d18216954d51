package rollout

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/promgate/promgate/api/v1alpha1"
)

func metric(name string) v1alpha1.Metric {
	return v1alpha1.Metric{Name: name, Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: `up{app="{{args.app}}"}`}}}
}

func fieldRefArg(name, path string) v1alpha1.Argument {
	return v1alpha1.Argument{Name: name, ValueFrom: &v1alpha1.ArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: path}}}
}

// buildWith builds the run of a step analysis naming refs, for a Rollout with labels and
// annotations, over objs.
func buildWith(t *testing.T, a *v1alpha1.RolloutAnalysis, objs ...client.Object) (*v1alpha1.AnalysisRunSpec, error) {
	t.Helper()
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web", UID: "ro-uid",
			Labels:      map[string]string{"app": "web-frontend", "team": "checkout"},
			Annotations: map[string]string{"promgate.io/slo": "0.995"}},
		Status: v1alpha1.RolloutStatus{StableRevision: blue, CanaryRevision: green},
	}
	c := fake.NewClientBuilder().WithScheme(fakeScheme(t)).WithObjects(objs...).Build()
	s := &state{r: &Reconciler{Client: c, APIReader: c}, ro: ro, c: newFencedClient(c, c, ro),
		w: &deployment{d: &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web"}}}}
	return s.buildRun(context.Background(), a, field.NewPath("spec", "strategy", "canary", "steps").Index(0).Child("analysis"))
}

func analysisTemplate(name string, spec v1alpha1.AnalysisTemplateSpec) *v1alpha1.AnalysisTemplate {
	return &v1alpha1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: name}, Spec: spec}
}

func argValue(t *testing.T, spec *v1alpha1.AnalysisRunSpec, name string) string {
	t.Helper()
	for _, a := range spec.Args {
		if a.Name == name {
			require.NotNil(t, a.Value, name)
			return *a.Value
		}
	}
	return "<unset>"
}

// TestFieldRefArgsComeFromTheRollout: args whose value is a field of the Rollout's
// metadata, in templates (Argo Rollouts' args[].valueFrom.fieldRef) or in the Rollout's
// analysis, get it when the run is built; the run itself knows no Rollout.
func TestFieldRefArgsComeFromTheRollout(t *testing.T) {
	tmpl := analysisTemplate("success-rate", v1alpha1.AnalysisTemplateSpec{
		Metrics: []v1alpha1.Metric{metric("success-rate")},
		Args: []v1alpha1.Argument{
			fieldRefArg("app", "metadata.labels['app']"),
			fieldRefArg("slo", `metadata.annotations["promgate.io/slo"]`),
			fieldRefArg("name", "metadata.name"),
			fieldRefArg("team", "metadata.labels['team']"),
		},
	})
	spec, err := buildWith(t, &v1alpha1.RolloutAnalysis{
		Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "success-rate"}},
		Args: []v1alpha1.AnalysisRunArgument{
			{Name: "team", Value: ptr.To("payments")},
			{Name: "ns", ValueFrom: &v1alpha1.AnalysisRunArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: "metadata.namespace"}}},
			{Name: "uid", ValueFrom: &v1alpha1.AnalysisRunArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: "metadata.uid"}}},
		},
	}, tmpl)
	require.NoError(t, err)
	for name, want := range map[string]string{"app": "web-frontend", "slo": "0.995", "name": "web", "team": "payments", "ns": fakeNS, "uid": "ro-uid"} {
		assert.Equal(t, want, argValue(t, spec, name), name)
	}
	for _, a := range spec.Args {
		assert.Nil(t, a.ValueFrom, "%s: the run gets values, never a fieldRef it could not resolve", a.Name)
	}

	for _, tc := range []struct {
		name string
		a    *v1alpha1.RolloutAnalysis
		tmpl *v1alpha1.AnalysisTemplate
		want string
	}{
		{"a label the Rollout does not have", &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "t"}}},
			analysisTemplate("t", v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{metric("m")}, Args: []v1alpha1.Argument{fieldRefArg("app", "metadata.labels['tier']")}}),
			`spec.strategy.canary.steps[0].analysis.templates: Invalid value: "metadata.labels['tier']": arg app of the templates: the Rollout has no label "tier"`},
		{"a field that is not the metadata's", &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "t"}},
			Args: []v1alpha1.AnalysisRunArgument{{Name: "app", ValueFrom: &v1alpha1.AnalysisRunArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: "spec.replicas"}}}}},
			analysisTemplate("t", v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{metric("m")}, Args: []v1alpha1.Argument{{Name: "app"}}}),
			`spec.strategy.canary.steps[0].analysis.args[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.replicas": "spec.replicas" is not metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'] or metadata.annotations['KEY']`},
		{"a key without quotes", &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "t"}}},
			analysisTemplate("t", v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{metric("m")}, Args: []v1alpha1.Argument{fieldRefArg("app", "metadata.labels[app]")}}),
			`is not metadata.name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildWith(t, tc.a, tc.tmpl)
			require.Error(t, err)
			var fe *field.Error
			require.ErrorAs(t, err, &fe)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestIncludedTemplates: a template's spec.templates bring their metrics, args, dryRun and
// measurementRetention into the run, each template once, namespaced or cluster-scoped.
func TestIncludedTemplates(t *testing.T) {
	release := analysisTemplate("release", v1alpha1.AnalysisTemplateSpec{
		Args:      []v1alpha1.Argument{{Name: "app", Value: ptr.To("web")}},
		Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "errors"}, {TemplateName: "latency", ClusterScope: true}},
		DryRun:    []v1alpha1.DryRun{{MetricName: "p99"}},
	})
	errorsT := analysisTemplate("errors", v1alpha1.AnalysisTemplateSpec{
		Metrics:              []v1alpha1.Metric{metric("error-rate")},
		Args:                 []v1alpha1.Argument{{Name: "app"}, {Name: "threshold", Value: ptr.To("0.01")}},
		MeasurementRetention: []v1alpha1.MeasurementRetention{{MetricName: ".*", Limit: 20}},
		Templates:            []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "latency", ClusterScope: true}},
	})
	latency := &v1alpha1.ClusterAnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Name: "latency"}, Spec: v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{metric("p99")}}}
	spec, err := buildWith(t, &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "release"}}}, release, errorsT, latency)
	require.NoError(t, err)
	var metrics []string
	for _, m := range spec.Metrics {
		metrics = append(metrics, m.Name)
	}
	assert.Equal(t, []string{"error-rate", "p99"}, metrics, "latency, included twice, counts once")
	assert.Equal(t, "web", argValue(t, spec, "app"), "the including template's value stands")
	assert.Equal(t, "0.01", argValue(t, spec, "threshold"))
	assert.Equal(t, []v1alpha1.DryRun{{MetricName: "p99"}}, spec.DryRun)
	assert.Equal(t, []v1alpha1.MeasurementRetention{{MetricName: ".*", Limit: 20}}, spec.MeasurementRetention)
	assert.Equal(t, []v1alpha1.AnalysisTemplateRef{{Name: "release"}, {Name: "errors"}, {Name: "latency", ClusterScope: true}}, spec.Templates)

	t.Run("a loop", func(t *testing.T) {
		a := analysisTemplate("a", v1alpha1.AnalysisTemplateSpec{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "b"}}})
		b := analysisTemplate("b", v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{metric("m")}, Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "a"}}})
		_, err := buildWith(t, &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "a"}}}, a, b)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "spec.strategy.canary.steps[0].analysis.templates[0].templateName")
		assert.Contains(t, err.Error(), "templates include each other: AnalysisTemplate a includes AnalysisTemplate b includes AnalysisTemplate a")
	})
	t.Run("an included template that does not exist", func(t *testing.T) {
		_, err := buildWith(t, &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "release"}}}, release, errorsT)
		var fe *field.Error
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, field.ErrorTypeNotFound, fe.Type, "the release waits for it, as for any missing template")
		assert.Equal(t, "spec.strategy.canary.steps[0].analysis.templates[0].templateName", fe.Field, "the reference that brought it in")
		assert.Contains(t, fe.Detail, `ClusterAnalysisTemplate "latency" not found`)
		assert.False(t, apierrors.IsNotFound(err))
	})
	t.Run("two templates with one metric name", func(t *testing.T) {
		other := analysisTemplate("other", v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{metric("p99")}})
		_, err := buildWith(t, &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "release"}, {TemplateName: "other"}}}, release, errorsT, latency, other)
		assert.ErrorContains(t, err, "spec.strategy.canary.steps[0].analysis.templates[1].templateName: Duplicate value")
	})
}
