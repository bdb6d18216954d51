package rollout

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// Metrics export release reports and where each Rollout stands. Labels stay bounded: a
// Rollout's namespace and name, its phase and step state, the outcome and who decided,
// never revisions; each Rollout has one series per gauge at a time.
type Metrics struct {
	releases      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	info          *prometheus.GaugeVec
	step          *prometheus.GaugeVec
	stepStarted   *prometheus.GaugeVec
	windowOpen    *prometheus.GaugeVec
	notifications *prometheus.CounterVec

	mu sync.Mutex
	// infoLabels are the labels each Rollout's info series has now, so a change of phase
	// deletes the old series without scanning every Rollout's.
	infoLabels map[types.NamespacedName][]string
}

// NewMetrics registers the release metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	rollout := []string{"namespace", "rollout"}
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
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgate_rollout_info",
			Help: "Always 1: each Rollout's strategy, phase and step state, as its status last written says.",
		}, []string{"namespace", "rollout", "strategy", "phase", "step_state"}),
		step: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgate_rollout_step",
			Help: "The step each Rollout is at (1-based; 0 before its first release).",
		}, rollout),
		stepStarted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgate_rollout_step_started_timestamp_seconds",
			Help: "When the current step state of a release in progress (Progressing or Paused) began, in Unix seconds.",
		}, rollout),
		windowOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgate_rollout_release_window_open",
			Help: "1 while a Rollout's release window is open, 0 while it is closed; only Rollouts with a window.",
		}, rollout),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_rollout_notifications_total",
			Help: "Release report deliveries to spec.notify, by Rollout and outcome (success, failure).",
		}, []string{"namespace", "rollout", "outcome"}),
		infoLabels: map[types.NamespacedName][]string{},
	}
	for _, c := range []prometheus.Collector{m.releases, m.duration, m.info, m.step, m.stepStarted, m.windowOpen, m.notifications} {
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

// observe sets ro's gauges from the status just written.
func (m *Metrics) observe(ro *v1alpha1.Rollout) {
	if m == nil {
		return
	}
	key := client.ObjectKeyFromObject(ro)
	strategy := "canary"
	if ro.Spec.Strategy.BlueGreen != nil {
		strategy = "blueGreen"
	}
	st := &ro.Status
	labels := []string{ro.Namespace, ro.Name, strategy, string(st.Phase), string(st.CurrentStepState)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.infoLabels[key]; ok && !slices.Equal(old, labels) {
		m.info.DeleteLabelValues(old...)
	}
	m.infoLabels[key] = labels
	m.info.WithLabelValues(labels...).Set(1)
	m.step.WithLabelValues(ro.Namespace, ro.Name).Set(float64(st.CurrentStepIndex))
	releasing := st.Phase == v1alpha1.RolloutPhaseProgressing || st.Phase == v1alpha1.RolloutPhasePaused
	if releasing && st.StepStartedAt != nil {
		m.stepStarted.WithLabelValues(ro.Namespace, ro.Name).Set(float64(st.StepStartedAt.UnixMicro()) / 1e6)
	} else {
		m.stepStarted.DeleteLabelValues(ro.Namespace, ro.Name)
	}
	if ro.Spec.ReleaseWindow != nil && st.Window != nil {
		open := 0.0
		if st.Window.Open {
			open = 1
		}
		m.windowOpen.WithLabelValues(ro.Namespace, ro.Name).Set(open)
	} else {
		m.windowOpen.DeleteLabelValues(ro.Namespace, ro.Name)
	}
}

// forget drops the gauges of a Rollout that is gone.
func (m *Metrics) forget(key types.NamespacedName) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.infoLabels[key]; ok {
		m.info.DeleteLabelValues(old...)
		delete(m.infoLabels, key)
	}
	for _, g := range []*prometheus.GaugeVec{m.step, m.stepStarted, m.windowOpen} {
		g.DeleteLabelValues(key.Namespace, key.Name)
	}
}

// notified counts one delivery of ro's report.
func (m *Metrics) notified(ro *v1alpha1.Rollout, err error) {
	if m == nil {
		return
	}
	outcome := "success"
	if err != nil {
		outcome = "failure"
	}
	m.notifications.WithLabelValues(ro.Namespace, ro.Name, outcome).Inc()
}
