package trafficsim

import (
	"math"
	"sort"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// histogramOf is the request-duration histogram of entry and backend as the simulator
// exports it.
func histogramOf(t *testing.T, s *Simulator, entry string, b Backend) *dto.Histogram {
	t.Helper()
	families, err := s.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "promgate_sim_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["entry"] == entry && l["service"] == b.Service && l["revision"] == b.Revision {
				return m.GetHistogram()
			}
		}
	}
	t.Fatalf("no histogram of %s %+v", entry, b)
	return nil
}

// histogramQuantile is PromQL's histogram_quantile over h's cumulative buckets: linear
// interpolation inside the bucket holding the rank, from 0 below the first bound.
func histogramQuantile(q float64, h *dto.Histogram) float64 {
	buckets := h.GetBucket()
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].GetUpperBound() < buckets[j].GetUpperBound() })
	rank := q * float64(h.GetSampleCount())
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		count := float64(b.GetCumulativeCount())
		if count >= rank {
			return lower + (b.GetUpperBound()-lower)*(rank-below)/(count-below)
		}
		lower, below = b.GetUpperBound(), count
	}
	return lower
}

// z are the standard normal quantiles the test reads the histograms at.
var z = map[float64]float64{0.5: 0, 0.9: 1.2815515655446004, 0.99: 2.3263478740408408}

// latencyRelease is a Service of two revisions with log-normal latencies: stable at 100 ms
// with spread 0.3 on three pods, canary at 200 ms with spread 0.15 on one.
func latencyRelease() Objects {
	objs := base()
	objs.Pods = concat(
		pods("shop", "s1", 3, map[string]string{AnnotationLatency: "100ms", AnnotationLatencySpread: "0.3"}),
		pods("shop", "c1", 1, map[string]string{AnnotationLatency: "200ms", AnnotationLatencySpread: "0.15"}),
	)
	return caughtUp(objs)
}

func latencySimulator(t *testing.T, seed uint64, rps float64) *Simulator {
	t.Helper()
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Seed: seed,
		Entries: []Entry{{Kind: KindService, Name: "shop-all", RPS: rps}}})
	require.NoError(t, err)
	require.Empty(t, s.observe(latencyRelease(), time.Now()))
	return s
}

// The exported histogram's quantiles, read as Prometheus reads them, land where each
// revision's log-normal distribution puts them: median x exp(spread x z).
func TestLatencyQuantilesFollowTheDistribution(t *testing.T) {
	s := latencySimulator(t, 14, 2000)
	for range 100 {
		s.emit(200 * time.Millisecond)
	}
	for _, rev := range []struct {
		backend        Backend
		median, spread float64
		requests       uint64
	}{
		{allBlue, 0.100, 0.3, 30000},
		{allGreen, 0.200, 0.15, 10000},
	} {
		h := histogramOf(t, s, "Service/shop-all", rev.backend)
		assert.Equal(t, rev.requests, h.GetSampleCount(), "%s", rev.backend.Revision)
		for q, zq := range z {
			want := rev.median * math.Exp(rev.spread*zq)
			got := histogramQuantile(q, h)
			assert.InEpsilon(t, want, got, 0.02, "revision %s quantile %v: want %.4f, got %.4f", rev.backend.Revision, q, want, got)
		}
		mean := rev.median * math.Exp(rev.spread*rev.spread/2)
		assert.InEpsilon(t, mean, h.GetSampleSum()/float64(h.GetSampleCount()), 0.01, "revision %s mean", rev.backend.Revision)
	}
}

// The noise is the seed's: the same seed and routing give the same latencies request by
// request, another seed others with the same distribution, and no spread the median
// every time.
func TestLatencyNoiseIsSeeded(t *testing.T) {
	run := func(seed uint64) *Simulator {
		s := latencySimulator(t, seed, 100)
		for range 20 {
			s.emit(200 * time.Millisecond)
		}
		return s
	}
	a, b, other := run(1), run(1), run(2)
	for _, backend := range []Backend{allBlue, allGreen} {
		ha, hb, ho := histogramOf(t, a, "Service/shop-all", backend), histogramOf(t, b, "Service/shop-all", backend), histogramOf(t, other, "Service/shop-all", backend)
		assert.Equal(t, ha.GetSampleSum(), hb.GetSampleSum(), "one seed, one draw")
		assert.Equal(t, ha.GetSampleCount(), ho.GetSampleCount())
		assert.NotEqual(t, ha.GetSampleSum(), ho.GetSampleSum(), "another seed, another draw")
	}

	objs := base()
	objs.Pods = pods("shop", "s1", 1, map[string]string{AnnotationLatency: "40ms"})
	s, err := New(Config{Client: fakeClient(t, Objects{}, interceptor.Funcs{}), Namespace: ns, Entries: []Entry{{Kind: KindService, Name: "shop", RPS: 10}}})
	require.NoError(t, err)
	s.observe(caughtUp(objs), time.Now())
	s.emit(time.Second)
	h := histogramOf(t, s, "Service/shop", stable)
	assert.InDelta(t, 10*0.040, h.GetSampleSum(), 1e-12, "without a spread every request takes the median")
}

func TestInvalidLatencySpreadUsesNone(t *testing.T) {
	for _, v := range []string{"-0.1", "wide", "NaN", "+Inf"} {
		objs := base()
		objs.Pods = pods("shop", "s1", 1, map[string]string{AnnotationLatencySpread: v})
		w := newWorld(caughtUp(objs))
		rev, ok := w.revision(stable)
		require.True(t, ok)
		assert.Zero(t, rev.spread, "%q", v)
		assert.Equal(t, []string{`pod shop-s1-a: sim.promgate.io/latency-spread "` + v + `" is not a finite number >= 0; using 0`}, w.snapshot(nil).Problems)
	}
}
