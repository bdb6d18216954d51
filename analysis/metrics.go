package analysis

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
)

// Metrics are the controller's own analysis metrics. They are labelled with the template a
// run names first (see templateName: a run that names none is labelled with its own
// name, one series per such run) and with metric names.
type Metrics struct {
	measurements *prometheus.CounterVec
	lastValue    *prometheus.GaugeVec
	runs         *prometheus.CounterVec
}

// NewMetrics registers the analysis metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		measurements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_analysis_measurements_total",
			Help: "Measurements taken, by template, metric and phase.",
		}, []string{"template", "metric", "phase"}),
		lastValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgate_analysis_metric_last_value",
			Help: "The first value of the last measurement of each template metric.",
		}, []string{"template", "metric"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgate_analysis_runs_completed_total",
			Help: "Analysis runs that reached a verdict, by template and phase.",
		}, []string{"template", "phase"}),
	}
	for _, c := range []prometheus.Collector{m.measurements, m.lastValue, m.runs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) measured(template string, t Taken) {
	if m == nil {
		return
	}
	m.measurements.WithLabelValues(template, t.Metric, string(t.Measurement.Phase)).Inc()
	if v, ok := firstValue(t.Result); ok {
		m.lastValue.WithLabelValues(template, t.Metric).Set(v)
	}
}

// firstValue is what the last-value gauge shows of a result: its first value, NaN for an
// empty one; ok is false when there was no value at all (a provider error included).
func firstValue(r metricsq.Result) (v float64, ok bool) {
	switch {
	case r.Type == model.ValNone:
		return 0, false
	case len(r.Values) == 0:
		return math.NaN(), true
	}
	return r.Values[0], true
}

func (m *Metrics) runCompleted(run *v1alpha1.AnalysisRun) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(templateName(run), string(run.Status.Phase)).Inc()
}
