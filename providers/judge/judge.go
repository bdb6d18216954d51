// Package judge is the judge provider: a metric that compares a canary with a baseline,
// Kayenta's way, and decides its measurement itself. At each measurement it runs the
// baseline and canary range queries of every comparison through the shared executor (so
// a baseline query many runs share is asked once per tick), pairs the series by label
// set, classifies each pair with the statistics of package judge (Mann-Whitney), scores
// them, and returns the score with a verdict: Pass is Successful, Marginal Inconclusive,
// Fail Failed. The measurement's value says why: the score and, per comparison, its
// classification, the shift's confidence interval and both sides' medians.
package judge

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/api/v1alpha1"
	stats "github.com/promgate/promgate/judge"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/prometheus"
	"github.com/promgate/promgate/providers/shared"
)

// Name is this kind's field in v1alpha1.MetricProvider and its label in the executor's
// metrics.
const Name = "judge"

// maxPoints is the most points per series Prometheus answers a range query with.
const maxPoints = 11000

// Options configures a Factory.
type Options struct {
	// DefaultAddress is the Prometheus of judge metrics that name none.
	DefaultAddress string
	// Executor runs both sides of every comparison. A Factory without one only checks
	// specs: Build reports that it cannot run anything.
	Executor *shared.Executor
}

// Factory builds judge Sources, whose queries share the cached HTTP clients of one
// prometheus.Factory.
type Factory struct {
	prom           *prometheus.Factory
	exec           *shared.Executor
	defaultAddress string
}

// NewFactory returns a Factory.
func NewFactory(opts Options) *Factory {
	return &Factory{
		prom:           prometheus.NewFactory(prometheus.Options{}),
		exec:           opts.Executor,
		defaultAddress: opts.DefaultAddress,
	}
}

// comparison is one judge metric, ready to query.
type comparison struct {
	name     string
	group    string
	muted    bool
	settings stats.Settings
	// baseline and canary are the two range queries, through the executor.
	baseline, canary providers.Provider
}

// Source judges one metric's comparisons at a tick.
type Source struct {
	desc        providers.Description
	comparisons []comparison
	weights     map[string]float64
	thresholds  stats.Thresholds
	// points is how many points a range query has per series when no step lacks data.
	points int
}

var _ providers.Source = (*Source)(nil)

// Describe says what the source asks.
func (s *Source) Describe() providers.Description { return s.desc }

// judged is one comparison of one label set, classified.
type judged struct {
	comparison int
	labels     string
	// only names the one side that had a series of this label set ("baseline" or
	// "canary"), "" when both had one or neither.
	only   string
	result stats.Result
}

// Fetch queries both sides of every comparison at q's tick, judges and scores them. Its time
// is bounded by its queries' timeouts; any query's error is the measurement's.
func (s *Source) Fetch(ctx context.Context, q providers.Query) (providers.Response, error) {
	answers := make([]providers.Measurement, 2*len(s.comparisons))
	failures := make([]error, len(answers))
	var wg sync.WaitGroup
	for i, c := range s.comparisons {
		for j, side := range []providers.Provider{c.baseline, c.canary} {
			k := 2*i + j
			wg.Go(func() { answers[k], failures[k] = side.Measure(ctx, providers.Query{Tick: q.Tick}) })
		}
	}
	wg.Wait()
	if err := firstFailure(s.comparisons, failures); err != nil {
		return providers.Response{}, err
	}

	var (
		all      []judged
		results  []stats.MetricResult
		warnings []string
		seen     = map[string]bool{}
	)
	for i, c := range s.comparisons {
		for j, a := range answers[2*i : 2*i+2] {
			for _, w := range slices.Concat(a.Warnings, a.Infos) {
				if w = fmt.Sprintf("%s %s: %s", c.name, sideName(j), w); !seen[w] {
					seen[w] = true
					warnings = append(warnings, w)
				}
			}
		}
		pairs, err := align(answers[2*i].Result, answers[2*i+1].Result, s.points)
		if err != nil {
			return providers.Response{}, fmt.Errorf("%s: %w", c.name, err)
		}
		for _, p := range pairs {
			r := stats.Classify(p.baseline, p.canary, c.settings)
			all = append(all, judged{comparison: i, labels: p.labels, only: p.only, result: r})
			results = append(results, stats.MetricResult{Name: c.name + p.labels, Group: c.group, Muted: c.muted, Result: r})
		}
	}
	sum, err := stats.Score(results, s.weights, s.thresholds)
	if err != nil {
		return providers.Response{}, fmt.Errorf("scoring: %w", err)
	}
	noData := s.noData(all)
	score := sum.Score
	if noData {
		// NaN is how a result says "no data": the metric's noData policy then decides,
		// as it does for a query that found nothing.
		score = math.NaN()
	}
	return providers.Response{
		Value:    &model.Scalar{Value: model.SampleValue(score)},
		Warnings: warnings,
		Verdict: &providers.Verdict{
			Phase:   phase(sum.Verdict),
			Value:   s.explain(all, sum, noData),
			Message: s.message(all, sum, noData),
		},
	}, nil
}

// noData reports whether no scored comparison had data on both sides.
func (s *Source) noData(all []judged) bool {
	for _, j := range all {
		if !s.comparisons[j.comparison].muted && j.result.Classification != stats.NoData {
			return false
		}
	}
	return true
}

// firstFailure is the first query's error naming its comparison and side, with how many
// others failed: one line, as every measurement's message is.
func firstFailure(cs []comparison, failures []error) error {
	var first error
	others := 0
	for k, err := range failures {
		switch {
		case err == nil:
		case first == nil:
			first = fmt.Errorf("%s %s: %w", cs[k/2].name, sideName(k), err)
		default:
			others++
		}
	}
	if others > 0 {
		return fmt.Errorf("%w (and %d more queries failed)", first, others)
	}
	return first
}

func sideName(k int) string {
	if k%2 == 0 {
		return "baseline"
	}
	return "canary"
}

// phase maps a verdict onto a measurement's phase.
func phase(v stats.Verdict) v1alpha1.AnalysisPhase {
	switch v {
	case stats.VerdictPass:
		return v1alpha1.AnalysisPhaseSuccessful
	case stats.VerdictMarginal:
		return v1alpha1.AnalysisPhaseInconclusive
	}
	return v1alpha1.AnalysisPhaseFailed
}

// pair is the two sides of one label set.
type pair struct {
	// labels is the label set as PromQL writes it, "" when it is empty.
	labels           string
	baseline, canary []float64
	// only is the side that alone had a series of the label set, as judged's.
	only string
}

// align pairs the series of both sides by label set, in the order of their labels. Each
// side has points values: the steps Prometheus left out (no sample there) and a side
// missing altogether are NaN, which the NaN strategy removes or counts as 0. Where the
// points fall in time does not matter to a rank test, so padding at the end is the same
// as filling each gap.
func align(baseline, canary metricsq.Result, points int) ([]pair, error) {
	byLabels := map[string]*pair{}
	var missing []float64
	for j, r := range []metricsq.Result{baseline, canary} {
		if r.Type != model.ValMatrix && r.Type != model.ValNone {
			return nil, fmt.Errorf("%s: a range query answered a %s, not a matrix", sideName(j), r.Type)
		}
		for _, series := range r.Series {
			key := labelString(series.Labels)
			p := byLabels[key]
			if p == nil {
				p = &pair{labels: key}
				byLabels[key] = p
			}
			values := pad(series.Values, points)
			if j == 0 {
				p.baseline = values
			} else {
				p.canary = values
			}
		}
	}
	if len(byLabels) == 0 {
		// Neither side has a series: one comparison with no data, which no data decides.
		byLabels[""] = &pair{}
	}
	out := make([]pair, 0, len(byLabels))
	for _, p := range byLabels {
		if (p.baseline == nil || p.canary == nil) && missing == nil {
			missing = pad(nil, points)
		}
		switch {
		case p.baseline == nil && p.canary != nil:
			p.only = sideName(1)
		case p.canary == nil && p.baseline != nil:
			p.only = sideName(0)
		}
		if p.baseline == nil {
			p.baseline = missing
		}
		if p.canary == nil {
			p.canary = missing
		}
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b pair) int { return cmp.Compare(a.labels, b.labels) })
	return out, nil
}

// pad returns values with NaN up to n points; values, which runs may share, is never
// written to.
func pad(values []float64, n int) []float64 {
	if len(values) >= n {
		return values
	}
	out := make([]float64, n)
	copy(out, values)
	for i := len(values); i < n; i++ {
		out[i] = math.NaN()
	}
	return out
}

// labelString writes labels as PromQL does, sorted: {code="500", route="/pay"}.
func labelString(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.String()
}
