package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
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

// TestLintAuth: auth Secrets are only in the cluster; lint checks auth without them, with
// the rest of the metric, and does not call a template with auth broken.
func TestLintAuth(t *testing.T) {
	const withAuth = `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: tenant
spec:
  metrics:
  - name: errors
    successCondition: value < 0.01
    provider:
      prometheus:
        address: https://mimir.example:443/prometheus
        query: sum(rate(errors_total[5m]))
        headers: [{key: X-Scope-OrgID, value: team-a}]
        auth:
          bearerTokenSecret: {name: mimir, key: token}
          tls: {caSecret: {name: mimir, key: ca.crt}}
`
	var out, stderr strings.Builder
	code := lint([]string{writeFile(t, withAuth)}, &out, &stderr)
	assert.Equal(t, exitSuccessful, code, out.String()+stderr.String())
	assert.Contains(t, out.String(), "AnalysisTemplate/tenant: ok (1 metrics)")

	out.Reset()
	bad := strings.Replace(withAuth, "sum(rate(errors_total[5m]))", "sum(rate(errors_total[5m])", 1)
	bad = strings.Replace(bad, "          tls:", "          basicAuth: {username: u, passwordSecret: {name: p, key: k}}\n          tls:", 1)
	code = lint([]string{writeFile(t, bad)}, &out, &stderr)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, out.String(), "AnalysisTemplate/tenant: metrics[errors].provider.prometheus.auth: at most one of bearerTokenSecret, basicAuth and oauth2")
	assert.Contains(t, out.String(), "AnalysisTemplate/tenant: metrics[errors].provider.prometheus.query: invalid PromQL", "the rest of a metric with auth is still checked")
}

var promgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "promgate-cli-")
	if err != nil {
		panic(err)
	}
	promgateBin = filepath.Join(dir, "promgate")
	if out, err := exec.Command("go", "build", "-o", promgateBin, ".").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("building promgate: %v: %s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run executes the built binary and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promgateBin, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, "%s", out)
	return string(out), 0
}

// TestBinaryAgainstPrometheus runs `promgate analyze` and `promgate lint` as binaries
// against a real Prometheus scraping a gauge set by the test.
func TestBinaryAgainstPrometheus(t *testing.T) {
	ratio := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promgate_cli_ratio", Help: "ratio"}, []string{"service"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(ratio)
	ratio.WithLabelValues("healthy").Set(0.99)
	ratio.WithLabelValues("broken").Set(0.7)
	exporter := testbed.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{Targets: []string{exporter}})
	c, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, _, _, err := promv1.NewAPI(c).Query(context.Background(), "promgate_cli_ratio", time.Now())
		vec, ok := v.(model.Vector)
		return err == nil && ok && len(vec) == 2
	}, 30*time.Second, 200*time.Millisecond)
	file := writeFile(t, twoTemplates)
	analyze := func(extra ...string) (string, int) {
		return run(t, append([]string{"analyze", "-f", file, "--template", "success-rate", "--prometheus", prom.URL}, extra...)...)
	}

	t.Run("Successful", func(t *testing.T) {
		out, code := analyze("--arg", "service=healthy")
		assert.Equal(t, exitSuccessful, code, out)
		assert.Regexp(t, `(?s)(Successful\s+\[0\.99\].*){3}`, out, "each of the three measurements is shown")
		assert.Contains(t, out, `verdict: Successful`)
	})
	t.Run("Failed", func(t *testing.T) {
		out, code := analyze("--arg", "service=broken")
		assert.Equal(t, exitFailed, code, out)
		assert.Contains(t, out, "[0.7]")
		assert.Contains(t, out, `successCondition "result[0] >= 0.95" is false`)
	})
	t.Run("InconclusiveOnNoData", func(t *testing.T) {
		out, code := analyze("--arg", "service=nobody")
		assert.Equal(t, exitInconclusive, code, out)
		assert.Contains(t, out, "no data")
	})
	t.Run("InvalidInput", func(t *testing.T) {
		out, code := analyze()
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, file+`: AnalysisTemplate/success-rate: metrics[success-rate].provider.prometheus.query: argument "service" is not defined`)
		assert.Contains(t, out, "add --arg service=VALUE")

		bad := writeFile(t, strings.Replace(twoTemplates, `{service="{{args.service}}"}`, `{service="{{args.service}}"`, 1))
		out, code = run(t, "analyze", "-f", bad, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=x")
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, "invalid PromQL")

		bad = writeFile(t, strings.Replace(twoTemplates, "result[0] >= 0.95", "result[0] >=", 1))
		out, code = run(t, "analyze", "-f", bad, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=x")
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, bad+": AnalysisTemplate/success-rate: metrics[success-rate].successCondition: ")

		bad = writeFile(t, strings.Replace(twoTemplates, "  - name: service\n", "  - name: service\n  - name: token\n    valueFrom: {secretKeyRef: {name: prom, key: token}}\n", 1))
		out, code = run(t, "analyze", "-f", bad, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=x")
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, "args[token] comes from a Secret: give its value with --arg token=VALUE")

		bad = writeFile(t, strings.Replace(twoTemplates, "failureCondition:", "failureCondtion:", 1))
		out, code = run(t, "analyze", "-f", bad, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=x")
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, bad+": ClusterAnalysisTemplate/latency: metrics[p99].failureCondtion: unknown field", "a broken document stops the run")
		assert.NotContains(t, out, "verdict")
	})
	t.Run("DryRunMetricIsShownAndDoesNotDecide", func(t *testing.T) {
		dry := writeFile(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: with-dry-run
spec:
  dryRun:
  - metricName: broken-ratio
  metrics:
  - name: healthy-ratio
    interval: 1s
    count: 2
    successCondition: value >= 0.95
    provider:
      prometheus:
        query: promgate_cli_ratio{service="healthy"}
  - name: broken-ratio
    interval: 1s
    count: 2
    successCondition: value >= 0.95
    provider:
      prometheus:
        query: promgate_cli_ratio{service="broken"}
`)
		out, code := run(t, "analyze", dry, "--prometheus", prom.URL)
		assert.Equal(t, exitSuccessful, code, out)
		assert.Regexp(t, `broken-ratio \(dry run\)\s+1\s+Failed\s+\[0\.7\]`, out)
		assert.Regexp(t, `\n\s+broken-ratio \(dry run\)\s+Failed\s+1 failed measurements exceed failureLimit 0`, out, "the summary shows each metric's outcome")
		assert.Contains(t, out, `verdict: Successful: metric "healthy-ratio" Successful`)
	})
	t.Run("Lint", func(t *testing.T) {
		out, code := run(t, "lint", "-f", file)
		assert.Equal(t, exitSuccessful, code, out)
		assert.Contains(t, out, "AnalysisTemplate/success-rate: ok (1 metrics)")
		assert.Contains(t, out, "ClusterAnalysisTemplate/latency: ok (1 metrics)")

		bad := writeFile(t, strings.Replace(strings.Replace(twoTemplates, "promgate_cli_latency", "rate(promgate_cli_latency[5m]", 1), "    interval: 1s\n", "", 1))
		out, code = run(t, "lint", bad)
		assert.Equal(t, exitFailed, code, out)
		assert.Contains(t, out, bad+": AnalysisTemplate/success-rate: metrics[success-rate].count: count 3 needs an interval")
		assert.Contains(t, out, bad+": ClusterAnalysisTemplate/latency: metrics[p99].provider.prometheus.query: invalid PromQL")

		bad = writeFile(t, strings.NewReplacer("result[0] > 0.5", "result[0] >", "successCondition:", "succesCondition:").Replace(twoTemplates))
		out, code = run(t, "lint", "-f", file, "-f", bad)
		assert.Equal(t, exitFailed, code, out)
		assert.Contains(t, out, file+": AnalysisTemplate/success-rate: ok (1 metrics)", "the good file is reported too")
		assert.Contains(t, out, bad+": AnalysisTemplate/success-rate: metrics[success-rate].succesCondition: unknown field")
		assert.Contains(t, out, bad+": ClusterAnalysisTemplate/latency: metrics[p99].failureCondition: ")

		out, code = run(t, "lint", "-f", filepath.Join(t.TempDir(), "missing.yaml"), file)
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, "missing.yaml: no such file or directory")
		assert.Contains(t, out, "ClusterAnalysisTemplate/latency: ok (1 metrics)", "the other files are still linted")
	})
	t.Run("InterruptEndsWithTheVerdictSoFar", func(t *testing.T) {
		endless := writeFile(t, strings.Replace(twoTemplates, "    count: 3\n", "", 1))
		cmd := exec.Command(promgateBin, "analyze", "-f", endless, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=healthy")
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool { return strings.Count(out.String(), "[0.99]") >= 2 }, 30*time.Second, 100*time.Millisecond)
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		err := cmd.Wait()
		assert.NoError(t, err, "measured successes before the interrupt: exit 0\n%s", out.String())
		assert.Contains(t, out.String(), "interrupted: terminating the run")
		assert.Contains(t, out.String(), "verdict: Successful: terminated")
	})
	// Last: it stops Prometheus.
	t.Run("ErrorWhenPrometheusIsDown", func(t *testing.T) {
		prom.Stop()
		out, code := analyze("--arg", "service=healthy")
		assert.Equal(t, exitError, code, out)
		assert.Contains(t, out, "connection refused")
		assert.Contains(t, out, "consecutive errors exceed consecutiveErrorLimit 4")
	})
}

// syncBuffer collects a subprocess's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAnalyzeInvalidInput runs analyze in the process on templates that never reach a
// query: every problem is printed, and the args a query lacks are found by their type.
func TestAnalyzeInvalidInput(t *testing.T) {
	twoArgs := strings.Replace(twoTemplates, `{service="{{args.service}}"}`, `{service="{{args.service}}", zone="{{args.zone}}"}`, 1)
	twoArgs = strings.Replace(twoArgs, "  - name: service\n", "  - name: service\n  - name: zone\n", 1)
	file := writeFile(t, twoArgs)
	var out, stderr strings.Builder
	code := analyze(context.Background(), []string{"-f", file, "--template", "success-rate", "--prometheus", "http://prometheus.invalid:9090"}, &out, &stderr)
	assert.Equal(t, exitInvalidInput, code, stderr.String())
	assert.Equal(t, "promgate analyze: "+file+`: AnalysisTemplate/success-rate: metrics[success-rate].provider.prometheus.query: argument "service" is not defined`+"\n"+
		"promgate analyze: "+file+`: AnalysisTemplate/success-rate: metrics[success-rate].provider.prometheus.query: argument "zone" is not defined`+"\n"+
		"promgate analyze: the template gives no value to an arg the query uses: add --arg service=VALUE --arg zone=VALUE\n", stderr.String())
	assert.Empty(t, out.String(), "nothing was run")

	bad := writeFile(t, strings.NewReplacer("result[0] >= 0.95", "result[0] >=", "interval: 1s", "interval: 1.5s").Replace(twoTemplates))
	stderr.Reset()
	code = analyze(context.Background(), []string{bad, "--template", "success-rate", "--arg", "service=x", "--prometheus", "http://prometheus.invalid:9090"}, &out, &stderr)
	assert.Equal(t, exitInvalidInput, code)
	assert.Contains(t, stderr.String(), bad+": AnalysisTemplate/success-rate: metrics[success-rate].interval: 1.5s is not a whole number of seconds\n")
	assert.Contains(t, stderr.String(), bad+": AnalysisTemplate/success-rate: metrics[success-rate].successCondition: ", "every problem, not the first of the metric")
	assert.NotContains(t, stderr.String(), "--arg", "no arg is missing")
}

// TestLintEveryProblemInOnePass: each problem of each document is one line naming its
// field, whether the structure, the engine or a provider kind found it.
func TestLintEveryProblemInOnePass(t *testing.T) {
	file := writeFile(t, `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: many
spec:
  metrics:
  - name: rate
    interval: 1.5s
    successCondition: result[0] >
    provider:
      prometheus:
        query: rate(x[5m]
        timeout: soon
        auth: {bearerTokenSecret: {name: s}}
  - name: page
    provider:
      web: {url: "ftp://x", jsonPath: "{$.a"}
---
apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: no-address
spec:
  metrics:
  - name: up
    provider: {prometheus: {query: up}}
`)
	var out, stderr strings.Builder
	code := lint([]string{file}, &out, &stderr)
	assert.Equal(t, exitFailed, code, stderr.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, file+": ")
	}
	assert.Equal(t, []string{
		"AnalysisTemplate/many: metrics[rate].provider.prometheus.auth.bearerTokenSecret.key: is required",
		"AnalysisTemplate/many: metrics[rate].interval: 1.5s is not a whole number of seconds",
		`AnalysisTemplate/many: metrics[rate].successCondition: condition "result[0] >": unexpected token EOF (1:11)`,
		"AnalysisTemplate/many: metrics[rate].provider.prometheus.query: invalid PromQL: 1:11: parse error: unclosed left parenthesis",
		`AnalysisTemplate/many: metrics[rate].provider.prometheus.timeout: invalid duration "soon": time: invalid duration "soon"`,
		`AnalysisTemplate/many: metrics[page].provider.web.url: URL "ftp://x" is not an http(s) URL`,
		`AnalysisTemplate/many: metrics[page].provider.web.jsonPath: jsonPath "{$.a": unclosed action`,
		"AnalysisTemplate/no-address: ok (1 metrics)",
	}, lines, "a template may leave the address to the controller's default")
}
