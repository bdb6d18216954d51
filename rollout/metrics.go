package rollout

import (
	"github.com/prometheus/client_golang/prometheus"

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
