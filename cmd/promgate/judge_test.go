package main

import (
	"context"
	"math"
	"math/rand/v2"
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

	"github.com/promgate/promgate/test/fakeprom"
	"github.com/promgate/promgate/test/testbed"
)

const judgeTemplate = `apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: canary-vs-stable
spec:
  args:
  - name: stable-hash
  - name: canary-hash
  metrics:
  - name: canary-vs-stable
    provider:
      judge:
        prometheus: {address: http://prometheus.invalid:9090}
        lookback: 5m
        step: 15s
        thresholds: {pass: 95, marginal: 75}
        metrics:
        - name: latency-p99
          baseline: latency{revision="{{args.stable-hash}}"}
          canary: latency{revision="{{args.canary-hash}}"}
          direction: increase
          allowedIncrease: 1.1
`

// TestAnalyzeJudge runs a judge template in the process against a fake Prometheus: the
// exit code is the verdict's, and the output says why.
func TestAnalyzeJudge(t *testing.T) {
	prom := fakeprom.New(t)
	latencies := func(seed uint64, median float64) fakeprom.Series {
		rng := rand.New(rand.NewPCG(seed, 14))
		s := fakeprom.Series{Values: make([]float64, 21)}
		for i := range s.Values {
			s.Values[i] = median * math.Exp(0.1*rng.NormFloat64())
		}
		return s
	}
	prom.Set(`latency{revision="stable"}`, latencies(1, 0.1))
	prom.Set(`latency{revision="slow"}`, latencies(2, 0.2))
	prom.Set(`latency{revision="same"}`, latencies(3, 0.1))
	file := writeFile(t, judgeTemplate)
	analyzeCanary := func(hash string) (string, int) {
		var out, stderr strings.Builder
		code := analyze(context.Background(), []string{"-f", file, "--prometheus", prom.URL, "--arg", "stable-hash=stable", "--arg", "canary-hash=" + hash}, &out, &stderr)
		return out.String() + stderr.String(), code
	}

	out, code := analyzeCanary("slow")
	assert.Equal(t, exitFailed, code, out)
	assert.Regexp(t, `canary-vs-stable\s+1\s+Failed\s+score 0 \(Fail\); latency-p99: High, shift \[0\.\d+, 0\.\d+\], medians canary 0\.19\d+ baseline 0\.10\d+, mean ratio 2\.\d+\s+score 0 is below the marginal threshold 75`, out)
	assert.Contains(t, out, `verdict: Failed: metric "canary-vs-stable" Failed`)

	out, code = analyzeCanary("same")
	assert.Equal(t, exitSuccessful, code, out)
	assert.Contains(t, out, "score 100 (Pass); latency-p99: Pass")

	out, code = analyzeCanary("gone")
	assert.Equal(t, exitInconclusive, code, out)
	assert.Contains(t, out, "no data; latency-p99: NoData, no canary data (21 points, 21 NaN)")
	assert.Equal(t, 1, prom.Requests(`latency{revision="gone"}`), "the template's address gave way to --prometheus")

	bad := writeFile(t, strings.Replace(judgeTemplate, "    provider:\n", "    successCondition: result >= 95\n    provider:\n", 1))
	var lintOut, stderr strings.Builder
	assert.Equal(t, exitFailed, lint([]string{bad}, &lintOut, &stderr))
	assert.Contains(t, lintOut.String(), bad+": AnalysisTemplate/canary-vs-stable: metrics[canary-vs-stable].successCondition: a judge metric is decided by its provider itself; a condition could only contradict it")
	lintOut.Reset()
	assert.Equal(t, exitSuccessful, lint([]string{file}, &lintOut, &stderr), lintOut.String())
}

// noisyLatency exports each revision's latency as a gauge that draws a fresh log-normal
// value around the revision's median at every scrape, as a real service's p99 moves.
type noisyLatency struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	rng     *rand.Rand
	medians map[string]float64
}

func (c *noisyLatency) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *noisyLatency) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for rev, median := range c.medians {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, median*math.Exp(0.1*c.rng.NormFloat64()), rev)
	}
}

// TestBinaryJudgeAgainstPrometheus runs `promgate analyze` as a binary with a judge
// template against a real Prometheus that scraped noisy latencies for 20 s: the exit
// code is the verdict.
func TestBinaryJudgeAgainstPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&noisyLatency{
		desc:    prometheus.NewDesc("promgate_cli_latency_seconds", "p99 latency", []string{"revision"}, nil),
		rng:     rand.New(rand.NewPCG(7, 14)),
		medians: map[string]float64{"stable": 0.1, "same": 0.1, "slow": 0.2},
	})
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{Targets: []string{testbed.Serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))}})
	c, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, _, _, err := promv1.NewAPI(c).Query(context.Background(), `count_over_time(promgate_cli_latency_seconds{revision="slow"}[20s]) >= 19`, time.Now())
		vec, ok := v.(model.Vector)
		return err == nil && ok && len(vec) == 1
	}, time.Minute, time.Second, "20 s of scrapes")
	file := writeFile(t, strings.NewReplacer(
		"lookback: 5m", "lookback: 20s", "step: 15s", "step: 1s",
		// Aggregated, as users write them: the sides pair by label set, and the revision
		// label (and instance, job) would tell them apart.
		`latency{revision="{{args.stable-hash}}"}`, `max(promgate_cli_latency_seconds{revision="{{args.stable-hash}}"})`,
		`latency{revision="{{args.canary-hash}}"}`, `max(promgate_cli_latency_seconds{revision="{{args.canary-hash}}"})`,
	).Replace(judgeTemplate))
	analyzeCanary := func(hash string) (string, int) {
		return run(t, "analyze", "-f", file, "--prometheus", prom.URL, "--arg", "stable-hash=stable", "--arg", "canary-hash="+hash)
	}

	out, code := analyzeCanary("slow")
	assert.Equal(t, exitFailed, code, out)
	assert.Regexp(t, `latency-p99: High, shift \[0\.\d+, 0\.\d+\], medians canary 0\.(19|2)\d* baseline 0\.(09|1)\d*`, out)
	out, code = analyzeCanary("same")
	assert.Equal(t, exitSuccessful, code, out)
	assert.Contains(t, out, "latency-p99: Pass")
	out, code = analyzeCanary("gone")
	assert.Equal(t, exitInconclusive, code, out)
	assert.Contains(t, out, "latency-p99: NoData")
}
