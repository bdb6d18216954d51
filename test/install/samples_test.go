package install

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/shared"
)

// TestSamples: config/samples holds the seeds' four scenarios as complete releases: every
// Rollout decodes into the API's types, refers only to objects the samples hold, and its
// templates pass the checks a run makes before it starts (PromQL, conditions, args).
func TestSamples(t *testing.T) {
	objs := kustomize(t, "config/samples")
	exec, err := shared.NewExecutor(nil, shared.Options{})
	require.NoError(t, err)
	engine := analysis.NewEngine(exec, "http://prometheus.example:9090", analysis.Cluster{})
	templates := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "AnalysisTemplate" {
			continue
		}
		var at v1alpha1.AnalysisTemplate
		require.NoError(t, Into(o, &at))
		problems, warnings := engine.ValidateTemplate(context.Background(), &at.Spec)
		assert.Empty(t, problems, "template %s", at.Name)
		assert.Empty(t, warnings, "template %s", at.Name)
		templates[at.Name] = true
	}

	strategies := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Rollout" {
			continue
		}
		var ro v1alpha1.Rollout
		require.NoError(t, Into(o, &ro))
		st, _ := ro.Spec.Strategy.Active()
		require.NotNil(t, st, "Rollout %s has a strategy", ro.Name)
		strategies[ro.Name] = "canary"
		if ro.Spec.Strategy.BlueGreen != nil {
			strategies[ro.Name] = "blueGreen"
		}
		assert.NotNil(t, Find(objs, "Deployment", ro.Spec.WorkloadRef.Name), "Rollout %s releases a sample Deployment", ro.Name)
		for _, step := range st.Steps {
			if step.Analysis != nil {
				for _, tpl := range step.Analysis.Templates {
					assert.True(t, templates[tpl.TemplateName], "Rollout %s uses template %s", ro.Name, tpl.TemplateName)
				}
			}
		}
		for _, tr := range st.TrafficRoutings {
			assert.NotNil(t, Find(objs, "Service", tr.Service), "Rollout %s routes Service %s", ro.Name, tr.Service)
			switch {
			case tr.Ingress != nil:
				assert.NotNil(t, Find(objs, "Ingress", tr.Ingress.Name), "Rollout %s routes Ingress %s", ro.Name, tr.Ingress.Name)
			case tr.Gateway != nil:
				assert.NotNil(t, Find(objs, "HTTPRoute", tr.Gateway.HTTPRouteName), "Rollout %s routes HTTPRoute %s", ro.Name, tr.Gateway.HTTPRouteName)
			}
		}
	}
	assert.Equal(t, map[string]string{
		"rollouts-demo":      "blueGreen", // seed 000
		"prod":               "canary",    // seed 001, ingress-nginx
		"rollouts-nginx":     "canary",    // seed 002, batches
		"echoserver-gateway": "canary",    // seed 004, Gateway API
	}, strategies)
}
