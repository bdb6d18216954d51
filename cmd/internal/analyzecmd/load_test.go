package analyzecmd

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/api/v1alpha1"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "templates.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

const twoTemplates = `# rollout analysis
apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service
  metrics:
  - name: success-rate
    interval: 1s
    count: 3
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        query: promgate_cli_ratio{service="{{args.service}}"}
---
apiVersion: promgate.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata:
  name: latency
spec:
  metrics:
  - name: p99
    failureCondition: result[0] > 0.5
    provider:
      prometheus:
        query: promgate_cli_latency
`

func TestLoadTemplates(t *testing.T) {
	ts, err := loadTemplates(writeFile(t, twoTemplates+"---\n# only a comment\n"))
	require.NoError(t, err)
	require.Len(t, ts, 2, "a document of comments only is no template")
	assert.Equal(t, "AnalysisTemplate/success-rate", ts[0].String())
	assert.Equal(t, "ClusterAnalysisTemplate/latency", ts[1].String())
	assert.Empty(t, ts[0].Problems)
	assert.Empty(t, ts[1].Problems)
	assert.Equal(t, 2, ts[1].Doc)

	problems := func(t *testing.T, content string) []string {
		t.Helper()
		ts, err := loadTemplates(writeFile(t, content))
		require.NoError(t, err)
		var lines []string
		for _, tmpl := range ts {
			for _, p := range tmpl.Problems {
				lines = append(lines, strings.TrimPrefix(tmpl.line(p), tmpl.File+": "))
			}
		}
		return lines
	}
	t.Run("UnknownFieldsNamedByMetric", func(t *testing.T) {
		got := problems(t, strings.NewReplacer("successCondition:", "sucessCondition:", "name: latency", "name: latency\n  labels: {a: b}\n  bogus: 1").Replace(twoTemplates))
		assert.Equal(t, []string{
			"AnalysisTemplate/success-rate: metrics[success-rate].sucessCondition: unknown field",
			"ClusterAnalysisTemplate/latency: metadata.bogus: unknown field",
		}, got, "a typo never silently drops a condition")
	})
	t.Run("ArgoAPIVersion", func(t *testing.T) {
		got := problems(t, strings.Replace(twoTemplates, "promgate.io/v1alpha1", "argoproj.io/v1alpha1", 1))
		assert.Equal(t, []string{"AnalysisTemplate/success-rate: apiVersion: argoproj.io/v1alpha1 is Argo Rollouts'; change it to promgate.io/v1alpha1 (the fields are the same)"}, got)
	})
	t.Run("NotATemplate", func(t *testing.T) {
		got := problems(t, "kind: Deployment\napiVersion: promgate.io/v1alpha1\nmetadata: {name: web}\n")
		assert.Equal(t, []string{`Deployment/web: kind: "Deployment": want AnalysisTemplate or ClusterAnalysisTemplate`}, got)
		got = problems(t, "apiVersion: promgate.io/v1alpha1\nkind: AnalysisTemplate\nspec: [a, b]\n")
		assert.Equal(t, []string{"AnalysisTemplate in document 1: spec: wrong type: got array, want an object", "AnalysisTemplate in document 1: metadata.name: a name is required"}, got)
	})
	t.Run("EveryValueOfTheWrongType", func(t *testing.T) {
		got := problems(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: types, labels: [a]}
spec:
  args: [{name: a, value: 3}]
  metrics:
  - name: rate
    count: [3]
    interval: 30
    successCondition: result[0] > 0.9
    provider:
      prometheus: {query: up, insecure: "yes", headers: {X-Scope-OrgID: a}}
  - name: page
    failureLimit: true
    provider:
      web: {url: "http://x", timeoutSeconds: 1.5, jsonBody: "{}"}
`)
		assert.Equal(t, []string{
			"AnalysisTemplate/types: metadata.labels: wrong type: got array, want an object",
			"AnalysisTemplate/types: args[0].value: wrong type: got number, want a string",
			"AnalysisTemplate/types: metrics[rate].count: wrong type: got array, want an integer or a string",
			"AnalysisTemplate/types: metrics[rate].interval: wrong type: got number, want a string",
			"AnalysisTemplate/types: metrics[rate].provider.prometheus.headers: wrong type: got object, want a list",
			"AnalysisTemplate/types: metrics[rate].provider.prometheus.insecure: wrong type: got string, want true or false",
			"AnalysisTemplate/types: metrics[page].failureLimit: wrong type: got bool, want an integer or a string",
			"AnalysisTemplate/types: metrics[page].provider.web.timeoutSeconds: wrong type: got number 1.5, want an integer",
			"AnalysisTemplate/types: metrics[page].provider.web.jsonBody: must be an object; send other JSON as body",
		}, got, "a value of the wrong type in one field does not hide the others")
	})
	t.Run("Structure", func(t *testing.T) {
		got := problems(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: s
spec:
  args:
  - name: a
    value: x
    valueFrom: {secretKeyRef: {name: s, key: k}}
  - name: 9lives
  dryRun:
  - metricName: sucess
  measurementRetention:
  - metricName: m
    limit: 0
  metrics:
  - name: m
    failureLimit: -1
    provider: {prometheus: {query: up, auth: {bearerTokenSecret: {name: s}}}}
  - name: m
    provider: {prometheus: {query: up}}
---
apiVersion: promgate.io/v1alpha1
kind: ClusterAnalysisTemplate
spec:
  metrics: []
`)
		assert.Equal(t, []string{
			"AnalysisTemplate/s: metrics[m].provider.prometheus.auth.bearerTokenSecret.key: is required",
			`AnalysisTemplate/s: metrics[m].name: duplicate metric name "m"`,
			"AnalysisTemplate/s: args[a]: value and valueFrom are mutually exclusive",
			`AnalysisTemplate/s: args[9lives].name: "9lives" is not a valid arg name (^[A-Za-z_][A-Za-z0-9_.-]*$)`,
			"ClusterAnalysisTemplate in document 2: metadata.name: a name is required",
			"ClusterAnalysisTemplate in document 2: metrics: at least one metric, or one included template, is required",
		}, got, "limits, dryRun and measurementRetention are the engine's to check, args rendered")
	})
	t.Run("FileErrors", func(t *testing.T) {
		_, err := loadTemplates(filepath.Join(t.TempDir(), "missing.yaml"))
		assert.ErrorIs(t, err, os.ErrNotExist)
		_, err = loadTemplates(writeFile(t, twoTemplates+"---\nkind: [\n"))
		assert.ErrorContains(t, err, "document 3: not YAML")
		_, err = loadTemplates(writeFile(t, strings.Replace(twoTemplates, "    count: 3\n", "    count: 3\n    count: 30\n", 1)))
		assert.ErrorContains(t, err, `key "count" already set`, "a repeated key never silently wins")
		_, err = loadTemplates(writeFile(t, "# nothing\n"))
		assert.ErrorContains(t, err, "no AnalysisTemplate or ClusterAnalysisTemplate found")
	})
}

func TestPickTemplate(t *testing.T) {
	ts, err := loadTemplates(writeFile(t, twoTemplates))
	require.NoError(t, err)
	_, err = pickTemplate(ts, "")
	assert.EqualError(t, err, "2 templates (success-rate, latency): choose one with --template")
	got, err := pickTemplate(ts, "latency")
	require.NoError(t, err)
	assert.Equal(t, "p99", got.Spec.Metrics[0].Name)
	_, err = pickTemplate(ts, "nosuch")
	assert.EqualError(t, err, `no template named "nosuch" (the file has success-rate, latency)`)
	got, err = pickTemplate(ts[1:], "")
	require.NoError(t, err, "a single template needs no --template")
	assert.Equal(t, "latency", got.Name)
}

func TestRunSpecArgs(t *testing.T) {
	ts, err := loadTemplates(writeFile(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: args
spec:
  args:
  - name: service
  - name: quantile
    value: "0.99"
  - name: token
    valueFrom: {secretKeyRef: {name: tokens, key: t}}
  metrics:
  - name: m
    provider:
      prometheus:
        address: http://template:9090
        query: up{service="{{args.service}}", q="{{args.quantile}}", t="{{args.token}}"}
`))
	require.NoError(t, err)
	tmpl := ts[0]
	value := func(spec *v1alpha1.AnalysisRunSpec, name string) string {
		for _, a := range spec.Args {
			if a.Name == name {
				return *a.Value
			}
		}
		return "<unset>"
	}

	spec, unset, err := runSpec(tmpl, ts, []string{"token=s3cret", "quantile=0.5"}, "http://prom:9090")
	require.NoError(t, err)
	assert.Equal(t, []string{"service"}, unset)
	assert.Equal(t, "s3cret", value(spec, "token"), "a secret-backed arg is given with --arg")
	assert.Equal(t, "0.5", value(spec, "quantile"), "--arg overrides the template's value")
	assert.Equal(t, "<unset>", value(spec, "service"))
	assert.Equal(t, "http://prom:9090", spec.Metrics[0].Provider.Prometheus.Address, "--prometheus overrides the template's address")
	assert.Equal(t, "http://template:9090", tmpl.Spec.Metrics[0].Provider.Prometheus.Address, "the template itself is left as it was")
	assert.Equal(t, []v1alpha1.AnalysisTemplateRef{{Name: "args"}}, spec.Templates)

	spec, unset, err = runSpec(tmpl, ts, []string{"token=x", "service=checkout"}, "")
	require.NoError(t, err)
	assert.Empty(t, unset)
	assert.Equal(t, "0.99", value(spec, "quantile"))
	assert.Equal(t, "http://template:9090", spec.Metrics[0].Provider.Prometheus.Address, "no --prometheus: the template's address")

	_, _, err = runSpec(tmpl, ts, nil, "")
	assert.EqualError(t, err, "args[token] comes from a Secret: give its value with --arg token=VALUE")
	_, _, err = runSpec(tmpl, ts, []string{"token=x", "nosuch=1"}, "")
	assert.EqualError(t, err, "--arg nosuch: the template declares no such arg")
	_, _, err = runSpec(tmpl, ts, []string{"service"}, "")
	assert.EqualError(t, err, `--arg "service": want name=value`)
}

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var files stringList
	fs.Var(&files, "f", "")
	pos, err := parseInterleaved(fs, []string{"a.yaml", "-f", "b.yaml", "c.yaml", "-f=d.yaml"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a.yaml", "c.yaml"}, pos)
	assert.Equal(t, stringList{"b.yaml", "d.yaml"}, files)
}
