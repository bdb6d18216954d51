package analyzecmd

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/shared"
)

// TestAnalyzeTemplatesWithIncludesAndFieldRefs: analyze builds its run from the template
// and those it includes from the same file; fieldRef args need --arg, with no Rollout.
func TestAnalyzeTemplatesWithIncludesAndFieldRefs(t *testing.T) {
	ts, err := loadTemplates(writeFile(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: release}
spec:
  args:
  - name: app
    valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
  templates:
  - {templateName: errors}
  - {templateName: latency, clusterScope: true}
---
apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  args: [{name: app}, {name: threshold, value: "0.01"}]
  metrics:
  - name: error-rate
    failureCondition: result[0] > {{args.threshold}}
    provider: {prometheus: {query: 'sum(rate(errors_total{app="{{args.app}}"}[1m]))'}}
---
apiVersion: promgate.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: latency}
spec:
  metrics:
  - name: p99
    provider: {prometheus: {query: 'histogram_quantile(0.99, sum by (le) (rate(latency_bucket{app="{{args.app}}"}[1m])))'}}
`))
	require.NoError(t, err)
	spec, unset, err := runSpec(ts[0], ts, []string{"app=checkout"}, "http://prometheus:9090")
	require.NoError(t, err)
	assert.Empty(t, unset)
	assert.Len(t, spec.Metrics, 2)
	assert.Equal(t, []v1alpha1.AnalysisTemplateRef{{Name: "release"}, {Name: "errors"}, {Name: "latency", ClusterScope: true}}, spec.Templates)
	plan, err := newEngineForTest().Prepare(context.Background(), spec, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, `sum(rate(errors_total{app="checkout"}[1m]))`, plan.Metrics[0].Spec.Provider.Prometheus.Query)

	_, _, err = runSpec(ts[0], ts, nil, "")
	assert.EqualError(t, err, "args[app] comes from the Rollout's metadata.labels['app']: give its value with --arg app=VALUE")
	_, _, err = runSpec(ts[0], ts[:2], []string{"app=x"}, "")
	assert.ErrorContains(t, err, "spec.templates[1].templateName: includes ClusterAnalysisTemplate latency, which is not in the file")
}

func newEngineForTest() *analysis.Engine {
	exec, err := shared.NewExecutor(nil, shared.Options{})
	if err != nil {
		panic(err)
	}
	return analysis.NewEngine(exec, "", analysis.Cluster{})
}
