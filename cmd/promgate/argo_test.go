package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArgoCorpusLints: templates written as Argo Rollouts users write them (testdata/argo),
// apiVersion changed, pass lint as they are.
func TestArgoCorpusLints(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "argo", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, stderr strings.Builder
			code := lint([]string{f}, &out, &stderr)
			assert.Equal(t, exitSuccessful, code, out.String()+stderr.String())
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				assert.Regexp(t, `: ok \(\d+ metrics`, line)
			}
		})
	}
}

func lintLines(t *testing.T, content string) ([]string, int) {
	t.Helper()
	file := writeFile(t, content)
	var out, stderr strings.Builder
	code := lint([]string{file}, &out, &stderr)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		lines = append(lines, strings.TrimPrefix(l, file+": "))
	}
	return lines, code
}

func TestLintWarnsWithoutFailing(t *testing.T) {
	lines, code := lintLines(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
  - name: error-rate
    successCondition: result < 0.05
    provider:
      prometheus:
        query: sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))
  - name: fine
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: sum(rate(errors_total[5m]))
`)
	assert.Equal(t, exitSuccessful, code, "a warning does not fail lint")
	assert.Equal(t, []string{
		"AnalysisTemplate/errors: metrics[error-rate].successCondition: warning: uses result as a number but the query returns a vector, a list: every measurement would be Error; read result[0], or wrap the query in scalar()",
		"AnalysisTemplate/errors: ok (2 metrics)",
	}, lines)
}

// TestLintNamesUnsupportedProviders: one line per provider promgate does not implement,
// saying what to use; never an unknown field.
func TestLintNamesUnsupportedProviders(t *testing.T) {
	lines, code := lintLines(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: vendors}
spec:
  metrics:
  - name: dd
    provider:
      datadog: {apiVersion: v2, query: "avg:trace.http.request.errors{service:checkout}", interval: 5m}
  - name: nr
    provider:
      newRelic: {profile: prod, query: "SELECT percentage(count(*), WHERE error IS true) FROM Transaction"}
  - name: canary-judge
    provider:
      kayenta: {address: http://kayenta:8090, application: checkout, canaryConfigName: checkout}
  - name: plugged
    provider:
      plugin:
        argoproj-labs/sample-prometheus: {address: http://prometheus:9090, query: up}
`)
	assert.Equal(t, exitFailed, code)
	require.Len(t, lines, 4)
	for i, name := range []string{"dd].provider.datadog: datadog", "nr].provider.newRelic: newRelic", "canary-judge].provider.kayenta: kayenta", "plugged].provider.plugin: plugin"} {
		assert.Contains(t, lines[i], "AnalysisTemplate/vendors: metrics["+name+" is an Argo Rollouts provider promgate does not implement; ")
		assert.NotContains(t, lines[i], "unknown field")
	}
	assert.Contains(t, lines[2], "the judge provider")
}

// TestLintArgoBadInput: the malformed inputs of the issue, each a problem naming its field.
func TestLintArgoBadInput(t *testing.T) {
	lines, code := lintLines(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: bad}
spec:
  args:
  - {name: count, value: five}
  - {name: lookback}
  metrics:
  - name: range
    interval: 1m
    count: '{{args.count}}'
    provider:
      prometheus:
        address: http://prometheus:9090
        query: up
        rangeQuery:
          start: now() - duration("{{args.lookback}}"
  - name: smoke
    provider:
      job:
        spec:
          template:
            spec:
              restartPolicy: Never
`)
	assert.Equal(t, exitFailed, code)
	assert.Equal(t, []string{
		`AnalysisTemplate/bad: metrics[range].count: "five" is not an integer`,
		`AnalysisTemplate/bad: metrics[range].provider.prometheus.rangeQuery.start: expression "now() - duration(\"0\"": unexpected token EOF (1:20) (checked with stand-ins for the args runs give: lookback=0)`,
		"AnalysisTemplate/bad: metrics[smoke].provider.job.spec.template.spec.containers: a Job needs at least one container",
	}, lines)
}
