package judge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/judge"
	"github.com/promgate/promgate/test/fakeprom"
)

// BenchmarkMeasurement is one judge measurement of 3 comparisons (6 range queries over
// loopback HTTP, decoding, alignment, 3 classifications, the score and the explanation)
// at a 5m lookback. Every iteration is a new tick, so nothing comes from the executor's
// cache.
func BenchmarkMeasurement(b *testing.B) {
	for _, step := range []time.Duration{15 * time.Second, time.Second} {
		n := int(5*time.Minute/step) + 1
		b.Run(fmt.Sprintf("comparisons=3/points=%d", n), func(b *testing.B) {
			prom := fakeprom.New(b)
			var cs []v1alpha1.JudgeComparison
			for i, name := range []string{"latency", "errors", "cpu"} {
				base, canary := name+"_stable", name+"_canary"
				prom.Set(base, fakeprom.Series{Values: latencySeries(uint64(2*i), n, 0.1, 0.2)})
				prom.Set(canary, fakeprom.Series{Values: latencySeries(uint64(2*i+1), n, 0.103, 0.2)})
				cs = append(cs, comparison(name, base, canary))
			}
			j := &v1alpha1.JudgeMetric{Prometheus: &v1alpha1.JudgePrometheus{Address: prom.URL}, Lookback: "5m", Step: v1alpha1.DurationString(step.String()), Metrics: cs}
			exec := mustExecutor(b)
			src, errs := judge.NewFactory(judge.Options{Executor: exec}).Build(context.Background(), field.NewPath("provider"), &v1alpha1.MetricProvider{Judge: j}, providers.Env{})
			if len(errs) > 0 {
				b.Fatal(errs.Err())
			}
			p := exec.Provider(src)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				m, err := p.Measure(ctx, providers.Query{Tick: tick.Add(time.Duration(i) * time.Second)})
				if err != nil || m.Verdict == nil {
					b.Fatalf("measurement %d: %v", i, err)
				}
			}
			b.ReportMetric(float64(prom.Total())/float64(i), "queries/op")
		})
	}
}
