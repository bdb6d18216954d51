package prometheus

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
)

// defaultRangeStep is a range query's resolution when the spec sets none.
const defaultRangeStep = time.Minute

// placeholderAddress stands in for a missing address while a template is checked: the
// controller may supply a default to its runs, and building a source never contacts it.
const placeholderAddress = "http://prometheus.placeholder.invalid:9090"

var _ providers.Factory = (*Factory)(nil)

// Name is the kind's field in v1alpha1.MetricProvider.
func (f *Factory) Name() string { return Name }

// Configured reports whether p sets the prometheus field.
func (f *Factory) Configured(p *v1alpha1.MetricProvider) bool { return p.Prometheus != nil }

// Answers is Numbers: a Prometheus result.
func (f *Factory) Answers() providers.Answers { return providers.Numbers }

// Check reports what admission rejects in p's prometheus field.
func (f *Factory) Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList {
	spec, path := p.Prometheus, path.Child(Name)
	var errs field.ErrorList
	if spec.Query == "" {
		errs = append(errs, field.Required(path.Child("query"), "a PromQL query is required"))
	}
	if spec.Range != nil && spec.RangeQuery != nil {
		errs = append(errs, field.Forbidden(path.Child("rangeQuery"), "range and rangeQuery are mutually exclusive"))
	}
	if rq := spec.RangeQuery; rq != nil && rq.Start == "" {
		errs = append(errs, field.Required(path.Child("rangeQuery", "start"), `a start such as now() - duration("10m") is required`))
	}
	errs = append(errs, providers.CheckAuth(path.Child("auth"), spec.Auth)...)
	return append(errs, providers.CheckAuthentication(path.Child("authentication"), spec.Authentication)...)
}

// Build resolves p's prometheus field against env: PromQL syntax checked, durations and
// range bounds parsed, Secrets read.
func (f *Factory) Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env) (providers.Source, fielderr.List) {
	spec, path := p.Prometheus, path.Child(Name)
	var errs fielderr.List
	cfg := Config{Address: spec.Address, Query: spec.Query}
	typ, err := f.queries.validate(cfg.Query)
	if err != nil {
		errs.Invalid(path.Child("query"), cfg.Query, err)
	}
	cfg.Type = typ
	switch {
	case cfg.Address == "" && f.defaultAddress == "" && env.Template:
		cfg.Address = placeholderAddress
	case cfg.Address != "":
		if _, err := parseAddress(cfg.Address); err != nil {
			errs.Invalid(path.Child("address"), cfg.Address, err)
		}
	}
	cfg.Timeout = providers.Timeout(path.Child("timeout"), spec.Timeout, &errs)
	switch {
	case spec.Range != nil && spec.RangeQuery != nil:
		errs.Add(field.Forbidden(path.Child("rangeQuery"), "range and rangeQuery are mutually exclusive; range is preferred"))
	case spec.Range != nil:
		r := spec.Range
		window, err := providers.ParseDuration(r.Window)
		if err != nil || window <= 0 {
			errs.Add(field.Invalid(path.Child("range", "window"), string(r.Window), "a positive duration is required"))
		}
		cfg.Range = &Range{Window: window, Step: step(path.Child("range", "step"), r.Step, &errs)}
	case spec.RangeQuery != nil:
		cfg.Range = rangeQuery(path.Child("rangeQuery"), spec.RangeQuery, &errs)
	}
	cfg.Headers = providers.Headers(spec.Headers)
	cfg.HTTP, cfg.SigV4 = env.HTTP(ctx, path, providers.HTTPSpec{Auth: spec.Auth, Authentication: spec.Authentication, Insecure: spec.Insecure}, &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	src, err := f.New(cfg)
	if err != nil {
		errs.Invalid(path, field.OmitValueType{}, err)
		return nil, errs
	}
	return src, nil
}

// step parses a range's step, the field at path; unset is defaultRangeStep.
func step(path *field.Path, d v1alpha1.DurationString, errs *fielderr.List) time.Duration {
	if v := providers.Duration(path, d, errs); v > 0 {
		return v
	}
	return defaultRangeStep
}

// rangeQuery compiles Argo Rollouts' range, the field at path, and evaluates its bounds
// once: an expression that fails, such as duration("soon"), or a start that is not
// before the end fails now as it would at every measurement, both being relative to
// now().
func rangeQuery(path *field.Path, rq *v1alpha1.PrometheusRangeQuery, errs *fielderr.List) *Range {
	r := &Range{Step: step(path.Child("step"), rq.Step, errs)}
	now := time.Now()
	bound := func(name, src string) *TimeExpr {
		e, err := CompileTime(src)
		if err == nil {
			_, err = e.At(now)
		}
		if err != nil {
			errs.Invalid(path.Child(name), src, err)
			return nil
		}
		return e
	}
	if rq.Start == "" {
		errs.Add(field.Required(path.Child("start"), `a start such as now() - duration("10m") is required`))
	} else {
		r.Start = bound("start", rq.Start)
	}
	failed := r.Start == nil
	if rq.End != "" {
		r.End = bound("end", rq.End)
		failed = failed || r.End == nil
	}
	if !failed {
		if _, _, err := r.bounds(now); err != nil {
			errs.Invalid(path, field.OmitValueType{}, err)
		}
	}
	return r
}

// validatedQueries is a bounded set of PromQL texts known to parse, with their types.
type validatedQueries struct {
	mu sync.Mutex
	ok map[string]model.ValueType
}

const maxValidatedQueries = 16384

func (v *validatedQueries) validate(query string) (model.ValueType, error) {
	v.mu.Lock()
	typ, ok := v.ok[query]
	v.mu.Unlock()
	if ok {
		return typ, nil
	}
	typ, err := metricsq.Validate(query)
	if err != nil {
		return model.ValNone, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ok == nil || len(v.ok) >= maxValidatedQueries {
		v.ok = map[string]model.ValueType{}
	}
	v.ok[query] = typ
	return typ, nil
}
