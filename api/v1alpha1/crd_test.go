package v1alpha1_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/test/testbin"
)

func loadCRD(t *testing.T, plural string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "promgate.io_"+plural+".yaml"))
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, yaml.UnmarshalStrict(b, &crd))
	return &crd
}

func TestCRDSchema(t *testing.T) {
	cases := []struct {
		plural  string
		scope   apiextensionsv1.ResourceScope
		short   string
		columns []string
	}{
		{"rollouts", apiextensionsv1.NamespaceScoped, "ro", []string{"STATUS", "STEP", "STEP_STATE", "MESSAGE", "AGE"}},
		{"analysisruns", apiextensionsv1.NamespaceScoped, "ar", []string{"STATUS", "TEMPLATE", "MESSAGE", "AGE"}},
		{"analysistemplates", apiextensionsv1.NamespaceScoped, "at", []string{"VALID", "MESSAGE", "AGE"}},
		{"clusteranalysistemplates", apiextensionsv1.ClusterScoped, "cat", []string{"VALID", "MESSAGE", "AGE"}},
	}
	for _, tc := range cases {
		t.Run(tc.plural, func(t *testing.T) {
			crd := loadCRD(t, tc.plural)
			assert.Equal(t, "promgate.io", crd.Spec.Group)
			assert.Equal(t, tc.scope, crd.Spec.Scope)
			assert.Equal(t, []string{tc.short}, crd.Spec.Names.ShortNames)
			require.Len(t, crd.Spec.Versions, 1)
			v := crd.Spec.Versions[0]
			assert.Equal(t, "v1alpha1", v.Name)
			require.NotNil(t, v.Subresources)
			assert.NotNil(t, v.Subresources.Status, "status is a subresource: users cannot overwrite it with spec edits")
			var cols []string
			for _, c := range v.AdditionalPrinterColumns {
				cols = append(cols, c.Name)
			}
			assert.Equal(t, tc.columns, cols)
		})
	}
}

func TestCRDValidationRules(t *testing.T) {
	at := loadCRD(t, "analysistemplates").Spec.Versions[0].Schema.OpenAPIV3Schema
	metrics := at.Properties["spec"].Properties["metrics"]
	assert.Equal(t, []string{"name"}, metrics.XListMapKeys, "metric names are unique")
	metric := metrics.Items.Schema
	rules := map[string]bool{}
	for _, r := range metric.XValidations {
		rules[r.Message] = true
	}
	assert.True(t, rules["count > 1 requires interval"])
	provider := metric.Properties["provider"]
	require.Len(t, provider.XValidations, 1)
	assert.Equal(t, "exactly one provider (prometheus, web, judge or job) must be set", provider.XValidations[0].Message)
	judge := provider.Properties["judge"]
	assert.Equal(t, []string{"lookback", "metrics", "step"}, judge.Required)
	require.Len(t, judge.XValidations, 1)
	assert.Equal(t, "thresholds.marginal cannot exceed thresholds.pass", judge.XValidations[0].Message)
	assert.Equal(t, "number", judge.Properties["metrics"].Items.Schema.Properties["allowedIncrease"].Type, "effect sizes are decimals, written as numbers")
	noData := metric.Properties["noData"]
	assert.Len(t, noData.Enum, 4)
	assert.JSONEq(t, `"Inconclusive"`, string(noData.Default.Raw), "no data is Inconclusive unless a template says otherwise")

	ro := loadCRD(t, "rollouts").Spec.Versions[0].Schema.OpenAPIV3Schema
	strategy := ro.Properties["spec"].Properties["strategy"]
	require.Len(t, strategy.XValidations, 1)
	assert.Equal(t, "exactly one of blueGreen and canary must be set", strategy.XValidations[0].Message)
	traffic := strategy.Properties["canary"].Properties["steps"].Items.Schema.Properties["traffic"]
	assert.Equal(t, `^(100|[1-9]?[0-9])%$`, traffic.Pattern)
}
