package judge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	stats "github.com/promgate/promgate/judge"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/prometheus"
)

// placeholderAddress stands in for a missing address while a template is checked: the
// controller may supply a default to its runs, and building a source never contacts it.
const placeholderAddress = "http://prometheus.placeholder.invalid:9090"

// Limits the CRD sets, checked again for tools that check a spec with no API server.
const (
	maxComparisons = 20
	maxNameLength  = 63
)

var _ providers.Factory = (*Factory)(nil)

// Name is the kind's field in v1alpha1.MetricProvider.
func (f *Factory) Name() string { return Name }

// Configured reports whether p sets the judge field.
func (f *Factory) Configured(p *v1alpha1.MetricProvider) bool { return p.Judge != nil }

// Answers is Verdicts: the score against the thresholds decides, not conditions.
func (f *Factory) Answers() providers.Answers { return providers.Verdicts }

// Check reports what admission rejects in p's judge field and Build does not check: the
// auth's shape, and the CRD's limits on the number and names of comparisons.
func (f *Factory) Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList {
	spec, path := p.Judge, path.Child(Name)
	var errs field.ErrorList
	if spec.Prometheus != nil {
		errs = append(errs, providers.CheckAuth(path.Child("prometheus", "auth"), spec.Prometheus.Auth)...)
	}
	if n := len(spec.Metrics); n > maxComparisons {
		errs = append(errs, field.TooMany(path.Child("metrics"), n, maxComparisons))
	}
	for i, c := range spec.Metrics {
		if len(c.Name) > maxNameLength {
			errs = append(errs, field.TooLong(comparisonPath(path, i, c).Child("name"), c.Name, maxNameLength))
		}
	}
	return errs
}

// Build resolves p's judge field against env (args are already rendered into it): PromQL
// syntax checked, durations, thresholds, settings and weights checked
// (settings by the statistics' own rules), Secrets read. Every problem names its field.
func (f *Factory) Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env) (providers.Source, fielderr.List) {
	spec, path := p.Judge, path.Child(Name)
	var errs fielderr.List
	if f.exec == nil {
		errs.Add(field.InternalError(path, errors.New("no query executor here to run the judge's queries")))
		return nil, errs
	}
	cfg := prometheus.Config{Address: f.defaultAddress}
	conn := path.Child("prometheus")
	if pr := spec.Prometheus; pr != nil {
		if pr.Address != "" {
			cfg.Address = pr.Address
		}
		cfg.Timeout = providers.Duration(conn.Child("timeout"), pr.Timeout, &errs)
		cfg.Headers = providers.Headers(pr.Headers)
		cfg.HTTP, _ = env.HTTP(ctx, conn, providers.HTTPSpec{Auth: pr.Auth}, &errs)
	} else {
		cfg.HTTP, _ = env.HTTP(ctx, conn, providers.HTTPSpec{}, &errs)
	}
	if cfg.Address == "" && env.Template {
		cfg.Address = placeholderAddress
	}
	lookback := positive(path.Child("lookback"), spec.Lookback, &errs)
	step := positive(path.Child("step"), spec.Step, &errs)
	points := 0
	if lookback > 0 && step > 0 {
		points = int(lookback/step) + 1
		switch {
		case step > lookback:
			errs.Add(field.Invalid(path.Child("step"), string(spec.Step), fmt.Sprintf("step %s exceeds lookback %s: each side would have one point", step, lookback)))
		case lookback/step >= maxPoints:
			errs.Add(field.Invalid(path.Child("step"), string(spec.Step), fmt.Sprintf("lookback %s at step %s is over %d points per series, more than Prometheus answers", lookback, step, maxPoints)))
		}
	}
	thresholds := checkThresholds(path.Child("thresholds"), spec.Thresholds, &errs)

	src := &Source{weights: map[string]float64{}, thresholds: thresholds, points: points}
	if len(spec.Metrics) == 0 {
		errs.Add(field.Required(path.Child("metrics"), "at least one comparison is required"))
	}
	names := map[string]bool{}
	weightFrom := map[string]string{}
	type queries struct{ baseline, canary string }
	var rendered []queries
	for i, c := range spec.Metrics {
		cp := comparisonPath(path, i, c)
		switch {
		case c.Name == "":
			errs.Add(field.Required(cp.Child("name"), "a name is required"))
		case names[c.Name]:
			errs.Add(fielderr.WithDetail(field.Duplicate(cp.Child("name"), c.Name), fmt.Sprintf("duplicate comparison name %q", c.Name)))
		}
		names[c.Name] = true
		rendered = append(rendered, queries{
			baseline: promQL(cp.Child("baseline"), c.Baseline, &errs),
			canary:   promQL(cp.Child("canary"), c.Canary, &errs),
		})
		if w := c.Weight; w != nil {
			prev, ok := src.weights[c.Group]
			switch {
			case !(*w >= 0 && *w <= 100):
				errs.Add(field.Invalid(cp.Child("weight"), *w, fmt.Sprintf("%v is not a percentage from 0 to 100", *w)))
			case ok && prev != *w:
				errs.Add(field.Invalid(cp.Child("weight"), *w, fmt.Sprintf("group %q already has weight %v from metrics[%s]", c.Group, prev, weightFrom[c.Group])))
			default:
				src.weights[c.Group], weightFrom[c.Group] = *w, c.Name
			}
		}
		src.comparisons = append(src.comparisons, comparison{
			name:     c.Name,
			group:    c.Group,
			muted:    c.Muted,
			settings: settings(cp, c, &errs),
		})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	checkScoring(path.Child("metrics"), src, &errs)
	if len(errs) > 0 {
		return nil, errs
	}

	cfg.Range = &prometheus.Range{Window: lookback, Step: step}
	var prom providers.Description
	query := func(q string) providers.Provider {
		c := cfg
		c.Query = q
		s, err := f.prom.New(c)
		if err != nil {
			// Every query shares the connection, so its problem is the connection's.
			errs.Invalid(conn, field.OmitValueType{}, err)
			return nil
		}
		prom = s.Describe()
		return f.exec.Provider(s)
	}
	parts := []any{src.weights, src.thresholds}
	for i := range src.comparisons {
		c := &src.comparisons[i]
		if c.baseline = query(rendered[i].baseline); c.baseline == nil {
			return nil, errs
		}
		baseline := prom.Query
		c.canary = query(rendered[i].canary)
		parts = append(parts, c.name, c.group, c.muted, c.settings, baseline, prom.Query)
	}
	src.desc = providers.Description{
		Kind: Name,
		// Not the Prometheus' own target: a judge holds a call slot while its queries
		// wait for theirs, so sharing the slots could leave every one held by a judge.
		Target: Name + " " + prom.Target,
		Query:  providers.ConfigKey(parts...),
		Shown:  "judge of " + prom.Shown,
	}
	return src, nil
}

// comparisonPath is the field path of the i-th comparison c: by name, or by index while
// it has none.
func comparisonPath(path *field.Path, i int, c v1alpha1.JudgeComparison) *field.Path {
	if c.Name == "" {
		return path.Child("metrics").Index(i)
	}
	return path.Child("metrics").Key(c.Name)
}

// positive parses d, the field at path, which must be a positive duration; a problem
// gives 0.
func positive(path *field.Path, d v1alpha1.DurationString, errs *fielderr.List) time.Duration {
	v, err := providers.ParseDuration(d)
	switch {
	case d == "":
		errs.Add(field.Required(path, "a positive duration is required"))
	case err != nil:
		errs.Invalid(path, string(d), err)
	case v == 0:
		errs.Add(field.Invalid(path, string(d), "a positive duration is required"))
	}
	return v
}

// promQL checks the syntax of query, the field at path.
func promQL(path *field.Path, query string, errs *fielderr.List) string {
	if query == "" {
		errs.Add(field.Required(path, "a PromQL query is required"))
		return ""
	}
	if _, err := metricsq.Validate(query); err != nil {
		errs.Invalid(path, query, err)
	}
	return query
}

// checkThresholds resolves t, the thresholds field at path: the defaults when unset.
func checkThresholds(path *field.Path, t *v1alpha1.JudgeThresholds, errs *fielderr.List) stats.Thresholds {
	if t == nil {
		return stats.Thresholds{Pass: stats.DefaultPassThreshold, Marginal: stats.DefaultMarginalThreshold}
	}
	th := stats.Thresholds{Pass: t.Pass, Marginal: t.Marginal}
	if !(t.Pass > 0) {
		// The statistics would also take pass 0 and marginal 0 for "the defaults".
		errs.Add(field.Invalid(path.Child("pass"), t.Pass, "a pass threshold of 0 or below would pass any score; it must be above 0"))
		return th
	}
	if _, err := stats.Score(nil, nil, th); err != nil {
		errs.Invalid(path, field.OmitValueType{}, err)
	}
	return th
}

// settings maps c, the comparison at path, onto the statistics' settings. Validate stops
// at the first problem; checking each field on its own names every one.
func settings(path *field.Path, c v1alpha1.JudgeComparison, errs *fielderr.List) stats.Settings {
	s := stats.Settings{
		Direction:        stats.Direction(c.Direction),
		NaN:              stats.NaNStrategy(c.NaNStrategy),
		Outliers:         stats.OutlierStrategy(c.Outliers),
		OutlierFactor:    c.OutlierFactor,
		Critical:         c.Critical,
		MustHaveData:     c.MustHaveData,
		EffectSize:       stats.EffectSizeMeasure(c.EffectSize),
		AllowedIncrease:  c.AllowedIncrease,
		AllowedDecrease:  c.AllowedDecrease,
		CriticalIncrease: c.CriticalIncrease,
		CriticalDecrease: c.CriticalDecrease,
	}
	if s.Validate() == nil {
		return s
	}
	measure := s.EffectSize
	if (stats.Settings{EffectSize: measure}).Validate() != nil {
		// Limits of an unknown measure are checked as the default measure's.
		measure = ""
	}
	for _, one := range []struct {
		field string
		value any
		s     stats.Settings
	}{
		{"direction", c.Direction, stats.Settings{Direction: s.Direction}},
		{"nanStrategy", c.NaNStrategy, stats.Settings{NaN: s.NaN}},
		{"outliers", c.Outliers, stats.Settings{Outliers: s.Outliers}},
		{"outlierFactor", c.OutlierFactor, stats.Settings{OutlierFactor: s.OutlierFactor}},
		{"effectSize", c.EffectSize, stats.Settings{EffectSize: s.EffectSize}},
		{"allowedIncrease", c.AllowedIncrease, stats.Settings{EffectSize: measure, AllowedIncrease: s.AllowedIncrease}},
		{"allowedDecrease", c.AllowedDecrease, stats.Settings{EffectSize: measure, AllowedDecrease: s.AllowedDecrease}},
		{"criticalIncrease", c.CriticalIncrease, stats.Settings{EffectSize: measure, CriticalIncrease: s.CriticalIncrease}},
		{"criticalDecrease", c.CriticalDecrease, stats.Settings{EffectSize: measure, CriticalDecrease: s.CriticalDecrease}},
	} {
		if err := one.s.Validate(); err != nil {
			errs.Invalid(path.Child(one.field), one.value, err)
		}
	}
	return s
}

// checkScoring scores every unmuted comparison as a Pass, which fails exactly when a
// real measurement's scoring would: weights that leave the scored groups nothing, or
// nothing to score at all.
func checkScoring(path *field.Path, src *Source, errs *fielderr.List) {
	var probe []stats.MetricResult
	for _, c := range src.comparisons {
		if !c.muted {
			probe = append(probe, stats.MetricResult{Name: c.name, Group: c.group, Result: stats.Result{Classification: stats.Pass}})
		}
	}
	if len(probe) == 0 {
		errs.Add(field.Invalid(path, field.OmitValueType{}, "every comparison is muted: nothing would be scored, and a measurement with nothing to score fails"))
		return
	}
	if _, err := stats.Score(probe, src.weights, src.thresholds); err != nil {
		errs.Invalid(path, field.OmitValueType{}, err)
	}
}
