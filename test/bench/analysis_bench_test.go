// Package bench holds the benchmarks that need the test bed. They print their figures;
// nothing here asserts on timing.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
)

const (
	runs            = 1000
	distinctQueries = 10
	interval        = 10 * time.Second
	warmUp          = 25 * time.Second
	window          = 60 * time.Second
)

// BenchmarkAnalysisRuns1000 runs 1,000 AnalysisRuns measuring every 10 s over 10 distinct
// queries against the real controller process at its default settings, and reports
// measurements per second (on schedule is 100/s), the queries Prometheus actually received
// per second (each distinct query once per tick is 1/s), and the controller's CPU and RSS.
// Anchor, Argo Rollouts on the same bed: 40 measurements/s at its defaults; tuned, 100/s with
// 0.18 cores, 118 MiB and 100 Prometheus queries/s.
func BenchmarkAnalysisRuns1000(b *testing.B) {
	cp := testbed.StartControlPlane(b)
	reg := prometheus.NewRegistry()
	ratio := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_success_ratio", Help: "per-service success ratio"}, []string{"service"})
	reg.MustRegister(ratio)
	for i := range distinctQueries {
		ratio.WithLabelValues(fmt.Sprintf("svc-%d", i)).Set(0.99)
	}
	exporter := testbed.Serve(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	prom := testbed.StartPrometheus(b, testbed.PrometheusOptions{Targets: []string{exporter}})
	pprofArgs, prof := newProfiler(b)
	ctrl := testbed.StartPromgate(b, cp, append(pprofArgs, "--prometheus-address="+prom.URL)...)

	ctx := context.Background()
	for i := range runs {
		run := &v1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("bench-%04d", i)},
			Spec: v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{
				Name:              "success-rate",
				Interval:          v1alpha1.DurationString(interval.String()),
				SuccessCondition:  "result[0] >= 0.95",
				InconclusiveLimit: ptr.To(intstr.FromInt32(1000)),
				Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
					Query: fmt.Sprintf(`bench_success_ratio{service="svc-%d"}`, i%distinctQueries),
				}},
			}}},
		}
		if err := cp.Client.Create(ctx, run); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(warmUp)

	measuredBefore := counterSum(b, ctrl.MetricsURL, "promgate_analysis_measurements_total", nil)
	queriesBefore := counterSum(b, prom.URL+"/metrics", "prometheus_http_requests_total", map[string]string{"handler": "/api/v1/query"})
	cpuBefore := cpuSeconds(b, ctrl.Pid())
	b.ResetTimer()
	profiled := prof.cpu("analysis", window/2)
	time.Sleep(window)
	b.StopTimer()
	profiled()
	prof.heap("analysis")
	measured := counterSum(b, ctrl.MetricsURL, "promgate_analysis_measurements_total", nil) - measuredBefore
	queries := counterSum(b, prom.URL+"/metrics", "prometheus_http_requests_total", map[string]string{"handler": "/api/v1/query"}) - queriesBefore
	cores := (cpuSeconds(b, ctrl.Pid()) - cpuBefore) / window.Seconds()
	rss := rssMiB(b, ctrl.Pid())

	perSec := measured / window.Seconds()
	b.ReportMetric(perSec, "measurements/s")
	b.ReportMetric(queries/window.Seconds(), "prom-queries/s")
	b.ReportMetric(cores, "cores")
	b.ReportMetric(rss, "RSS-MiB")
	fmt.Printf("analysis: %d runs, %d distinct queries, interval %s, window %s\n", runs, distinctQueries, interval, window)
	fmt.Printf("  measurements/s   %7.1f  (on schedule: %.0f/s; Argo Rollouts at defaults: 40/s)\n", perSec, float64(runs)/interval.Seconds())
	fmt.Printf("  prom queries/s   %7.2f  (target <= 2/s; Argo Rollouts: 100/s)\n", queries/window.Seconds())
	fmt.Printf("  controller cores %7.3f  (Argo Rollouts tuned: 0.18)\n", cores)
	fmt.Printf("  controller RSS   %7.1f MiB (Argo Rollouts tuned: 118 MiB; %s)\n", rss, rssParts(b, ctrl.Pid()))
}

// counterSum adds the values of a counter's series whose labels include match.
func counterSum(b *testing.B, url, name string, match map[string]string) float64 {
	b.Helper()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatalf("parsing %s: %v", url, err)
	}
	var sum float64
	f, ok := families[name]
	if !ok {
		return 0
	}
metrics:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range match {
			if labels[k] != v {
				continue metrics
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// cpuSeconds is the process's user plus system CPU time from /proc.
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) / clockTicks
}

// machineBusySeconds is the CPU time every process on the machine has used (the bed's
// servers, the controller, the benchmark): on 2 cores, where the controller's figures
// stop being its own.
func machineBusySeconds(b *testing.B) float64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		b.Fatalf("/proc/stat starts with %q", line)
	}
	var busy float64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %v", err)
		}
		busy += v
	}
	const clockTicks = 100 // USER_HZ on Linux
	return busy / clockTicks
}

func rssMiB(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// rssParts says what the RSS is made of: anonymous memory (the Go heap, stacks, the
// runtime) and file pages (the binary's code and data that were touched).
func rssParts(b *testing.B, pid int) string {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for _, line := range strings.Split(string(raw), "\n") {
		for _, k := range []string{"RssAnon:", "RssFile:"} {
			if strings.HasPrefix(line, k) {
				kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				parts = append(parts, fmt.Sprintf("%s %.1f MiB", strings.TrimSuffix(k, ":"), kb/1024))
			}
		}
	}
	return strings.Join(parts, ", ")
}
