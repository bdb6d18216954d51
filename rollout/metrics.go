package rollout

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// Metrics export release reports. Labels stay bounded: a Rollout's namespace and name, the
// outcome and who decided, never revisions.
type Metrics struct {
	releases *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the release metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_rollout_releases_total",
			Help: "Releases that ended, by Rollout, outcome (Completed, Aborted, Cancelled) and who decided.",
		}, []string{"namespace", "rollout", "outcome", "decided_by"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promgate_rollout_release_duration_seconds",
			Help:    "How long releases took from their start to their end, by outcome.",
			Buckets: prometheus.ExponentialBuckets(10, 2, 12),
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.releases, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) released(ro *v1alpha1.Rollout, rep *v1alpha1.ReleaseReport) {
	if m == nil || rep == nil {
		return
	}
	m.releases.WithLabelValues(ro.Namespace, ro.Name, string(rep.Outcome), string(rep.DecidedBy)).Inc()
	m.duration.WithLabelValues(string(rep.Outcome)).Observe(rep.EndedAt.Sub(rep.StartedAt.Time).Seconds())
}

// RegisterRolloutCount exports promgate_rollouts{shard}: how many Rollouts this controller
// owns, counted from its cache at each scrape. Summed over the shards it is every Rollout
// of the cluster; one that no shard's selector matches is released by no one, and the sum
// falling short of the cluster's count shows it.
func RegisterRolloutCount(reg prometheus.Registerer, cache client.Reader, shard string) error {
	count := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "promgate_rollouts",
		Help:        "Rollouts this controller owns: those its --shard-label-selector matches, or all.",
		ConstLabels: prometheus.Labels{"shard": shard},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var ros v1alpha1.RolloutList
		if err := cache.List(ctx, &ros, client.UnsafeDisableDeepCopy); err != nil {
			return math.NaN()
		}
		return float64(len(ros.Items))
	})
	return reg.Register(count)
}
