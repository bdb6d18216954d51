package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
)

const (
	judgeRuns = 100
	// judgeComparisons are the judge metrics of each run: latency, error ratio, CPU.
	judgeComparisons = 3
)

// judgeSignals are the series the judge compares, one gauge per revision, with a typical
// level and log-normal noise each: what a latency, an error ratio and a CPU usage look
// like when sampled.
var judgeSignals = []struct {
	name          string
	level, spread float64
}{
	{"bench_judge_latency_seconds", 0.1, 0.2},
	{"bench_judge_error_ratio", 0.01, 0.5},
	{"bench_judge_cpu_cores", 0.3, 0.1},
}

// BenchmarkJudgeRuns100 runs 100 AnalysisRuns of one judge metric with 3 comparisons
// every 10 s, each canary its own revision judged against one shared stable revision, on
// the real controller process and Prometheus. Each measurement asks 6 range queries (2 min
// at 5 s, 25 points a side); the 3 baseline queries are the same for every run at one
// tick, so the shared executor asks Prometheus 3 + 300 per tick, not 600. It reports the
// controller's CPU, the range queries Prometheus received per second, and measurements
// per second (on schedule: 10/s).
func BenchmarkJudgeRuns100(b *testing.B) {
	cp := testbed.StartControlPlane(b)
	reg := prometheus.NewRegistry()
	gauges := make([]*prometheus.GaugeVec, len(judgeSignals))
	for i, s := range judgeSignals {
		gauges[i] = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.name, Help: "a judged signal, per revision"}, []string{"revision"})
		reg.MustRegister(gauges[i])
	}
	revisions := []string{"stable"}
	for i := range judgeRuns {
		revisions = append(revisions, fmt.Sprintf("canary-%03d", i))
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() {
		stop()
		wg.Wait()
	})
	// Every revision draws from the same distributions: the judge passes them all, and
	// each run measures to the end of the window.
	rng := rand.New(rand.NewPCG(100, 3))
	move := func() {
		for i, s := range judgeSignals {
			for _, rev := range revisions {
				gauges[i].WithLabelValues(rev).Set(s.level * math.Exp(s.spread*rng.NormFloat64()))
			}
		}
	}
	move()
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				move()
			}
		}
	})
	exporter := testbed.Serve(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom := testbed.StartPrometheus(b, testbed.PrometheusOptions{Targets: []string{exporter}})
	pprofArgs, prof := newProfiler(b)
	ctrl := testbed.StartPromgate(b, cp, append(pprofArgs, "--prometheus-address="+prom.URL)...)

	for i := range judgeRuns {
		var comparisons []v1alpha1.JudgeComparison
		for _, s := range judgeSignals[:judgeComparisons] {
			comparisons = append(comparisons, v1alpha1.JudgeComparison{
				Name:      s.name,
				Baseline:  fmt.Sprintf(`%s{revision="stable"}`, s.name),
				Canary:    fmt.Sprintf(`%s{revision="%s"}`, s.name, revisions[i+1]),
				Direction: "increase",
			})
		}
		run := &v1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("judge-%03d", i)},
			Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{
				Name:     "canary-vs-stable",
				Interval: v1alpha1.DurationString(interval.String()),
				// A chance High among the 100 runs must not end one inside the window.
				FailureLimit:      ptr.To(intstr.FromInt32(1000)),
				InconclusiveLimit: ptr.To(intstr.FromInt32(1000)),
				Provider: v1alpha1.MetricProvider{Judge: &v1alpha1.JudgeMetric{
					Lookback: "2m", Step: "5s", Metrics: comparisons,
				}},
			}}},
		}
		if err := cp.Client.Create(ctx, run); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(warmUp)

	rangeQueries := map[string]string{"handler": "/api/v1/query_range"}
	measuredBefore := counterSum(b, ctrl.MetricsURL, "promgate_analysis_measurements_total", nil)
	queriesBefore := counterSum(b, prom.URL+"/metrics", "prometheus_http_requests_total", rangeQueries)
	cpuBefore := cpuSeconds(b, ctrl.Pid())
	b.ResetTimer()
	profiled := prof.cpu("judge", window/2)
	time.Sleep(window)
	b.StopTimer()
	profiled()
	prof.heap("judge")
	measured := counterSum(b, ctrl.MetricsURL, "promgate_analysis_measurements_total", nil) - measuredBefore
	queries := counterSum(b, prom.URL+"/metrics", "prometheus_http_requests_total", rangeQueries) - queriesBefore
	cores := (cpuSeconds(b, ctrl.Pid()) - cpuBefore) / window.Seconds()
	rss := rssMiB(b, ctrl.Pid())

	perSec := measured / window.Seconds()
	shared := float64(judgeComparisons+judgeRuns*judgeComparisons) / interval.Seconds()
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(queries/window.Seconds(), "prom_queries/s")
	b.ReportMetric(perSec, "measurements/s")
	b.ReportMetric(rss, "RSS-MiB")
	fmt.Printf("judge: %d runs of %d comparisons, one shared stable revision, interval %s, window %s\n", judgeRuns, judgeComparisons, interval, window)
	fmt.Printf("  measurements/s   %7.1f  (on schedule: %.0f/s)\n", perSec, float64(judgeRuns)/interval.Seconds())
	fmt.Printf("  prom queries/s   %7.2f  (range queries; baselines shared: %.1f/s, unshared: %.1f/s)\n",
		queries/window.Seconds(), shared, float64(2*judgeRuns*judgeComparisons)/interval.Seconds())
	fmt.Printf("  controller cores %7.3f\n", cores)
	fmt.Printf("  controller RSS   %7.1f MiB (%s)\n", rss, rssParts(b, ctrl.Pid()))
}
