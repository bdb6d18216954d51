package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
)

// rolloutsFromEnv is the number of Rollouts a benchmark runs: def, or the variable name.
func rolloutsFromEnv(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive count", name, v)
	}
	return n
}

// scaleBed is a cluster with n one-replica apps adopted by n Rollouts, Prometheus serving
// 10 distinct series and the controller process.
type scaleBed struct {
	*testbed.Cluster
	pg   *testbed.Promgate
	n    int
	prof *profiler
}

const scaleNS = "default"

func startScaleBed(b *testing.B, n int, steps []v1alpha1.RolloutStep, template *v1alpha1.AnalysisTemplate) *scaleBed {
	b.Helper()
	cl := testbed.StartCluster(b)
	reg := prometheus.NewRegistry()
	ratio := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_success_ratio", Help: "per-service success ratio"}, []string{"service"})
	reg.MustRegister(ratio)
	for i := range distinctQueries {
		ratio.WithLabelValues(fmt.Sprintf("svc-%d", i)).Set(0.99)
	}
	prom := testbed.StartPrometheus(b, testbed.PrometheusOptions{Targets: []string{testbed.Serve(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))}})
	pprofArgs, prof := newProfiler(b)
	// $PROMGATE_BENCH_ARGS adds controller flags, to measure a tuning (workers, QPS).
	args := append(append(pprofArgs, "--prometheus-address="+prom.URL), strings.Fields(os.Getenv("PROMGATE_BENCH_ARGS"))...)
	pg := testbed.StartPromgate(b, cl.ControlPlane, args...)
	s := &scaleBed{Cluster: cl, pg: pg, n: n, prof: prof}
	ctx := context.Background()
	if template != nil {
		if err := cl.Client.Create(ctx, template); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	for i := range n {
		name := fmt.Sprintf("app-%05d", i)
		strategy := v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: steps}}
		ro := fixtures.Rollout(scaleNS, name, *strategy.DeepCopy())
		if template != nil {
			for j := range steps {
				if a := ro.Spec.Strategy.Canary.Steps[j].Analysis; a != nil {
					a.Args = []v1alpha1.AnalysisRunArgument{{Name: "svc", Value: ptr.To(fmt.Sprintf("svc-%d", i%distinctQueries))}}
				}
			}
		}
		for _, o := range []client.Object{fixtures.Deployment(scaleNS, name, 1), ro} {
			if err := wait.ExponentialBackoff(wait.Backoff{Steps: 8, Duration: 50 * time.Millisecond, Factor: 2}, func() (bool, error) {
				return cl.Client.Create(ctx, o) == nil, nil
			}); err != nil {
				b.Fatalf("creating %T %s: %v", o, name, err)
			}
		}
	}
	healthy := s.waitAll(b, 30*time.Minute, "adopted", func(ro *v1alpha1.Rollout) bool { return ro.Status.Phase == v1alpha1.RolloutPhaseHealthy })
	fmt.Printf("rollouts: %d apps created and adopted in %s (%d Healthy)\n", n, time.Since(start).Round(time.Second), healthy)
	return s
}

// waitAll waits until done holds for every Rollout, or within; it returns how many hold.
func (s *scaleBed) waitAll(b *testing.B, within time.Duration, what string, done func(*v1alpha1.Rollout) bool) int {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		var list v1alpha1.RolloutList
		if err := s.Client.List(context.Background(), &list, client.InNamespace(scaleNS)); err != nil {
			b.Fatal(err)
		}
		count := 0
		for i := range list.Items {
			if done(&list.Items[i]) {
				count++
			}
		}
		if count == s.n {
			return count
		}
		if time.Now().After(deadline) {
			fmt.Printf("rollouts: only %d of %d %s within %s\n", count, s.n, what, within)
			return count
		}
		time.Sleep(time.Second)
	}
}

// newTemplates gives every app a new image: n releases at once.
func (s *scaleBed) newTemplates(b *testing.B, image string) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, s.n)
	sem := make(chan struct{}, 32)
	for i := range s.n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fixtures.SetTemplate(context.Background(), s.Client, scaleNS, fmt.Sprintf("app-%05d", i), image, "0"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// sampler samples the controller's RSS every second and keeps the largest.
type sampler struct {
	mu   sync.Mutex
	peak float64
	stop func()
}

func sampleRSS(b *testing.B, pid int) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rss := rssMiB(b, pid)
			s.mu.Lock()
			s.peak = max(s.peak, rss)
			s.mu.Unlock()
			time.Sleep(time.Second)
		}
	}()
	s.stop = sync.OnceFunc(func() { cancel(); <-done })
	b.Cleanup(s.stop)
	return s
}

func (s *sampler) max() float64 {
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// reconciles counts the controller's reconciles, by controller.
func reconciles(b *testing.B, pg *testbed.Promgate) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	for _, c := range []string{"rollout", "analysisrun"} {
		out[c] = counterSum(b, pg.MetricsURL, "controller_runtime_reconcile_total", map[string]string{"controller": c})
	}
	return out
}

// histogramQuantile is the upper bound of the bucket holding the q quantile of one of the
// controller's histograms, over its series whose label is value.
func histogramQuantile(b *testing.B, pg *testbed.Promgate, metric, label, value string, q float64) time.Duration {
	b.Helper()
	resp, err := http.Get(pg.MetricsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	var count float64
	buckets := map[float64]float64{}
	for _, m := range families[metric].GetMetric() {
		matches := false
		for _, l := range m.GetLabel() {
			matches = matches || (l.GetName() == label && l.GetValue() == value)
		}
		if !matches {
			continue
		}
		h := m.GetHistogram()
		count += float64(h.GetSampleCount())
		for _, bk := range h.GetBucket() {
			buckets[bk.GetUpperBound()] += float64(bk.GetCumulativeCount())
		}
	}
	bounds := slices.Sorted(maps.Keys(buckets))
	for _, ub := range bounds {
		if buckets[ub] >= q*count {
			return time.Duration(ub * float64(time.Second))
		}
	}
	return -1
}

// apiCounts are the controller's API requests by verb, from its client metrics.
func apiCounts(b *testing.B, pg *testbed.Promgate) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	for _, verb := range []string{"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"} {
		out[verb] = counterSum(b, pg.MetricsURL, "rest_client_requests_total", map[string]string{"method": verb})
	}
	return out
}

// transitions records, from watches, when each AnalysisRun was first seen Successful and
// when each Rollout was first seen past each step.
type transitions struct {
	mu sync.Mutex
	// verdict maps a run to when it was seen Successful; its Rollout and step come from
	// its name.
	verdict map[string]time.Time
	// left maps "rollout/step" to when the Rollout was seen at a later step or completed.
	left map[string]time.Time
	// completed maps a Rollout to when it was seen Completed.
	completed map[string]time.Time
	// rewatched counts the watches the server ended and that were opened again.
	rewatched atomic.Int64
}

var stepRunName = regexp.MustCompile(`^(.+)-[^-]+-step(\d+)-\d+$`)

func watchTransitions(b *testing.B, s *scaleBed) *transitions {
	b.Helper()
	wc, err := client.NewWithWatch(s.Config, client.Options{Scheme: testbed.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	tr := &transitions{verdict: map[string]time.Time{}, left: map[string]time.Time{}, completed: map[string]time.Time{}}
	go follow(ctx, wc, &v1alpha1.AnalysisRunList{}, &tr.rewatched, func(o client.Object, at time.Time) {
		run, ok := o.(*v1alpha1.AnalysisRun)
		if !ok || run.Status.Phase != v1alpha1.AnalysisPhaseSuccessful {
			return
		}
		tr.mu.Lock()
		if _, seen := tr.verdict[run.Name]; !seen {
			tr.verdict[run.Name] = at
		}
		tr.mu.Unlock()
	})
	go follow(ctx, wc, &v1alpha1.RolloutList{}, &tr.rewatched, func(o client.Object, at time.Time) {
		ro, ok := o.(*v1alpha1.Rollout)
		if !ok {
			return
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for step := int32(1); step < ro.Status.CurrentStepIndex || (ro.Status.Phase == v1alpha1.RolloutPhaseCompleted && step <= ro.Status.CurrentStepIndex); step++ {
			key := fmt.Sprintf("%s/%d", ro.Name, step)
			if _, seen := tr.left[key]; !seen {
				tr.left[key] = at
			}
		}
		if _, seen := tr.completed[ro.Name]; !seen && ro.Status.Phase == v1alpha1.RolloutPhaseCompleted {
			tr.completed[ro.Name] = at
		}
	})
	return tr
}

// follow hands every version of every object of list's kind to seen, with when it came,
// watching again from the last version when the server ends a watch (it does, after a
// few minutes, or when this client falls behind); rewatched counts those.
func follow(ctx context.Context, wc client.WithWatch, list client.ObjectList, rewatched *atomic.Int64, seen func(client.Object, time.Time)) {
	rv := ""
	for ctx.Err() == nil {
		w, err := wc.Watch(ctx, list.DeepCopyObject().(client.ObjectList), client.InNamespace(scaleNS),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			o, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			rv = o.GetResourceVersion()
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				seen(o, time.Now())
			}
		}
		w.Stop()
		rewatched.Add(1)
	}
}

// latencies are, for every Successful step run, the time from its verdict to its
// Rollout's next step.
func (tr *transitions) latencies() []time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []time.Duration
	for run, at := range tr.verdict {
		m := stepRunName.FindStringSubmatch(run)
		if m == nil {
			continue
		}
		if left, ok := tr.left[m[1]+"/"+m[2]]; ok {
			out = append(out, left.Sub(at))
		}
	}
	slices.Sort(out)
	return out
}

func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return float64(ds[max(i, 0)].Microseconds()) / 1000
}

// BenchmarkRollouts1000 releases ROLLOUTS (default 1,000) one-replica apps at once, in
// three steps of which two are analysed every 10 s against one of 10 distinct queries,
// and reports the controller's CPU and RSS, its API requests per second by verb, the step
// transition latency (an AnalysisRun's verdict seen → its Rollout's next step seen, both
// through watches), and how many releases completed on schedule. Targets: every release on
// schedule, p99 transition under 1 s, RSS under 200 MiB.
func BenchmarkRollouts1000(b *testing.B) {
	n := rolloutsFromEnv(b, "ROLLOUTS", 1000)
	const measurements = 2
	template := &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "success-rate", Namespace: scaleNS},
		Spec: v1alpha1.AnalysisTemplateSpec{
			Args: []v1alpha1.Argument{{Name: "svc"}},
			Metrics: []v1alpha1.Metric{{
				Name: "success-rate", Interval: v1alpha1.DurationString(interval.String()), Count: ptr.To(intstr.FromInt32(measurements)),
				SuccessCondition: "result[0] >= 0.95",
				Provider:         v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: `bench_success_ratio{service="{{args.svc}}"}`}},
			}},
		},
	}
	steps := []v1alpha1.RolloutStep{
		{Replicas: fixtures.Replicas("1"), Analysis: fixtures.Analysis("success-rate")},
		{Replicas: fixtures.Replicas("50%"), Analysis: fixtures.Analysis("success-rate")},
		{Replicas: fixtures.Replicas("100%")},
	}
	s := startScaleBed(b, n, steps, template)
	tr := watchTransitions(b, s)
	rss := sampleRSS(b, s.pg.Pid())
	apiBefore, cpuBefore, machineBefore := apiCounts(b, s.pg), cpuSeconds(b, s.pg.Pid()), machineBusySeconds(b)
	reconcilesBefore := reconciles(b, s.pg)
	start := time.Now()
	b.ResetTimer()
	profiled := s.prof.cpu("rollouts", 30*time.Second)
	s.newTemplates(b, "echoserver:green")
	// On schedule, a release takes its two analyses: (measurements-1) intervals each, after
	// up to one interval waiting for the first shared tick (measurements of one query are
	// aligned to a grid, so runs share their Prometheus calls); then its pods. The deadline
	// leaves room for the bed itself on 2 cores.
	schedule := 2 * time.Duration(measurements) * interval
	completed := s.waitAll(b, schedule+10*time.Minute, "completed", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.Phase == v1alpha1.RolloutPhaseCompleted
	})
	b.StopTimer()
	elapsed := time.Since(start)
	profiled()
	s.prof.heap("rollouts")
	cores := (cpuSeconds(b, s.pg.Pid()) - cpuBefore) / elapsed.Seconds()
	machine := (machineBusySeconds(b) - machineBefore) / elapsed.Seconds()
	apiAfter := apiCounts(b, s.pg)
	reconcilesAfter := reconciles(b, s.pg)
	var total float64
	for verb, v := range apiAfter {
		rate := (v - apiBefore[verb]) / elapsed.Seconds()
		total += rate
		b.ReportMetric(rate, "api_"+verb+"/s")
	}
	lat := tr.latencies()
	var durations []time.Duration
	tr.mu.Lock()
	for _, at := range tr.completed {
		durations = append(durations, at.Sub(start))
	}
	tr.mu.Unlock()
	slices.Sort(durations)
	peak := rss.max()
	b.ReportMetric(float64(n), "rollouts")
	b.ReportMetric(float64(completed), "completed")
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(machine, "machine_cores")
	b.ReportMetric(peak, "rss_MiB")
	b.ReportMetric(total, "api_req/s")
	b.ReportMetric(quantile(lat, 0.5), "p50_transition_ms")
	b.ReportMetric(quantile(lat, 0.99), "p99_transition_ms")
	b.ReportMetric(quantile(lat, 1), "max_transition_ms")
	b.ReportMetric(quantile(durations, 0.99)/1000, "p99_release_s")
	fmt.Printf("rollouts: %d releases at once, %d completed in %s (on schedule: at most %s of analysis each)\n", n, completed, elapsed.Round(time.Second), schedule)
	fmt.Printf("  release duration p50 %.1f s, p99 %.1f s, max %.1f s\n", quantile(durations, 0.5)/1000, quantile(durations, 0.99)/1000, quantile(durations, 1)/1000)
	fmt.Printf("  step transition  p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d transitions (target p99 < 1 s; watches reopened %d times)\n",
		quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1), len(lat), tr.rewatched.Load())
	fmt.Printf("  controller %.3f cores, peak RSS %.1f MiB (target < 200 MiB), %.0f API requests/s, %.1f API requests per release; the machine %.2f of %d cores busy\n",
		cores, peak, total, total*elapsed.Seconds()/float64(s.n), machine, runtime.NumCPU())
	for _, c := range []string{"rollout", "analysisrun"} {
		n := reconcilesAfter[c] - reconcilesBefore[c]
		fmt.Printf("  %s reconciles %.0f (%.1f per release), %.0f/s; reconcile duration p50 %s, p99 %s (bucket bounds, since start)\n", c, n, n/float64(s.n), n/elapsed.Seconds(),
			histogramQuantile(b, s.pg, "controller_runtime_reconcile_time_seconds", "controller", c, 0.5),
			histogramQuantile(b, s.pg, "controller_runtime_reconcile_time_seconds", "controller", c, 0.99))
	}
}

// BenchmarkRollouts10000Idle holds ROLLOUTS_IDLE (default 10,000) Healthy Rollouts with
// no release and reports the controller's RSS and CPU over a minute, then the time from a
// new pod template on one Deployment to its release's step 1 in the Rollout's status.
// Targets: RSS under 1 GiB (Argo Rollouts: 11-14 GB reported at that size), CPU under 0.1
// core, the release starting within 1 s.
func BenchmarkRollouts10000Idle(b *testing.B) {
	n := rolloutsFromEnv(b, "ROLLOUTS_IDLE", 10000)
	steps := []v1alpha1.RolloutStep{{Replicas: fixtures.Replicas("1"), Pause: fixtures.Pause(0)}, {Replicas: fixtures.Replicas("100%")}}
	s := startScaleBed(b, n, steps, nil)
	// Let the controller's caches settle after the adoptions.
	time.Sleep(warmUp)
	cpuBefore := cpuSeconds(b, s.pg.Pid())
	b.ResetTimer()
	profiled := s.prof.cpu("idle", window/2)
	time.Sleep(window)
	cores := (cpuSeconds(b, s.pg.Pid()) - cpuBefore) / window.Seconds()
	rss := rssMiB(b, s.pg.Pid())
	profiled()
	s.prof.heap("idle")

	tr := watchStart(b, s, "app-00000")
	sent := time.Now()
	if err := fixtures.SetTemplate(context.Background(), s.Client, scaleNS, "app-00000", "echoserver:green", "0"); err != nil {
		b.Fatal(err)
	}
	started := tr.wait(b, time.Minute)
	b.StopTimer()
	startMs := float64(started.Sub(sent).Microseconds()) / 1000
	b.ReportMetric(float64(n), "rollouts")
	b.ReportMetric(rss, "rss_MiB")
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(startMs, "start_ms")
	b.ReportMetric(rss*1024/float64(n), "rss_KiB_per_rollout")
	fmt.Printf("rollouts idle: %d Healthy Rollouts: RSS %.1f MiB (%.1f KiB each; target < 1 GiB), %.3f cores idle (target < 0.1), a new template to step 1 in %.0f ms (target < 1 s)\n",
		n, rss, rss*1024/float64(n), cores, startMs)
}

// startWatch waits for one Rollout's release to reach step 1.
type startWatch struct {
	at chan time.Time
}

func watchStart(b *testing.B, s *scaleBed, name string) *startWatch {
	b.Helper()
	wc, err := client.NewWithWatch(s.Config, client.Options{Scheme: testbed.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w, err := wc.Watch(ctx, &v1alpha1.RolloutList{}, client.InNamespace(scaleNS), client.MatchingFields{"metadata.name": name})
	if err != nil {
		b.Fatal(err)
	}
	sw := &startWatch{at: make(chan time.Time, 1)}
	go func() {
		for ev := range w.ResultChan() {
			if ro, ok := ev.Object.(*v1alpha1.Rollout); ok && ro.Status.Phase == v1alpha1.RolloutPhaseProgressing && ro.Status.CurrentStepIndex == 1 {
				sw.at <- time.Now()
				return
			}
		}
	}()
	return sw
}

func (sw *startWatch) wait(b *testing.B, within time.Duration) time.Time {
	b.Helper()
	select {
	case at := <-sw.at:
		return at
	case <-time.After(within):
		b.Fatal("the release never reached step 1")
		return time.Time{}
	}
}
