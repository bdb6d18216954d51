package main

import (
	"context"
	"errors"
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
	ts, err := loadTemplates(writeFile(t, twoTemplates))
	require.NoError(t, err)
	require.Len(t, ts, 2)
	assert.Equal(t, "AnalysisTemplate/success-rate", ts[0].String())
	assert.Equal(t, "ClusterAnalysisTemplate/latency", ts[1].String())

	_, err = pickTemplate(ts, "")
	assert.ErrorContains(t, err, "choose one with --template")
	got, err := pickTemplate(ts, "latency")
	require.NoError(t, err)
	assert.Equal(t, "p99", got.Spec.Metrics[0].Name)

	_, err = loadTemplates(writeFile(t, strings.Replace(twoTemplates, "successCondition:", "sucessCondition:", 1)))
	assert.ErrorContains(t, err, `unknown field "sucessCondition"`, "a typo never silently drops a condition")

	_, err = loadTemplates(writeFile(t, strings.Replace(twoTemplates, "promgate.io/v1alpha1", "argoproj.io/v1alpha1", 1)))
	assert.ErrorContains(t, err, "change it to promgate.io/v1alpha1")

	_, err = loadTemplates(writeFile(t, "kind: Deployment\napiVersion: promgate.io/v1alpha1\n"))
	assert.ErrorContains(t, err, `kind "Deployment"`)
}

func TestRunSpecArgs(t *testing.T) {
	ts, err := loadTemplates(writeFile(t, twoTemplates))
	require.NoError(t, err)
	spec, err := runSpec(ts[0], []string{"service=checkout"}, "http://prom:9090")
	require.NoError(t, err)
	require.Len(t, spec.Args, 1)
	assert.Equal(t, "checkout", *spec.Args[0].Value)
	assert.Equal(t, "http://prom:9090", spec.Metrics[0].Provider.Prometheus.Address)

	_, err = runSpec(ts[0], []string{"nosuch=1"}, "")
	assert.ErrorContains(t, err, "declares no such arg")
	_, err = runSpec(ts[0], []string{"service"}, "")
	assert.ErrorContains(t, err, "want name=value")
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
		assert.Contains(t, out, `AnalysisTemplate/success-rate: metrics[success-rate].provider.prometheus.query: argument "service" is not defined`)

		bad := writeFile(t, strings.Replace(twoTemplates, `{service="{{args.service}}"}`, `{service="{{args.service}}"`, 1))
		out, code = run(t, "analyze", "-f", bad, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=x")
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, "invalid PromQL")

		bad = writeFile(t, strings.Replace(twoTemplates, "result[0] >= 0.95", "result[0] >=", 1))
		out, code = run(t, "analyze", "-f", bad, "--template", "success-rate", "--prometheus", prom.URL, "--arg", "service=x")
		assert.Equal(t, exitInvalidInput, code, out)
		assert.Contains(t, out, "metrics[success-rate].successCondition")
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

		out, code = run(t, "lint", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
		assert.Equal(t, exitInvalidInput, code, out)
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
