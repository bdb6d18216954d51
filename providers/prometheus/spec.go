package prometheus

import (
	"context"
	"sync"
	"time"

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

// Check reports what admission rejects in p's prometheus field.
func (f *Factory) Check(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList {
	return providers.CheckAuth(path.Child(Name, "auth"), p.Prometheus.Auth)
}

// Build resolves p's prometheus field against env: args rendered into the address, query
// and headers, PromQL syntax checked, durations parsed, Secrets read.
func (f *Factory) Build(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env) (providers.Source, fielderr.List) {
	spec, path := p.Prometheus, path.Child(Name)
	var (
		errs fielderr.List
		cfg  Config
		ok   bool
	)
	if cfg.Query, ok = env.Render(path.Child("query"), spec.Query, &errs); ok {
		if err := f.queries.validate(cfg.Query); err != nil {
			errs.Invalid(path.Child("query"), cfg.Query, err)
		}
	}
	cfg.Address, _ = env.Render(path.Child("address"), spec.Address, &errs)
	if cfg.Address == "" && f.defaultAddress == "" && env.Template {
		cfg.Address = placeholderAddress
	}
	cfg.Timeout = providers.Duration(path.Child("timeout"), spec.Timeout, &errs)
	if r := spec.Range; r != nil {
		window, err := providers.ParseDuration(r.Window)
		if err != nil || window <= 0 {
			errs.Add(field.Invalid(path.Child("range", "window"), string(r.Window), "a positive duration is required"))
		}
		step := providers.Duration(path.Child("range", "step"), r.Step, &errs)
		if step == 0 {
			step = defaultRangeStep
		}
		cfg.Range = &Range{Window: window, Step: step}
	}
	cfg.Headers = env.Headers(path.Child("headers"), spec.Headers, &errs)
	cfg.HTTP = env.HTTPConfig(ctx, path.Child("auth"), spec.Auth, &errs)
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

// validatedQueries is a bounded set of PromQL texts known to parse.
type validatedQueries struct {
	mu sync.Mutex
	ok map[string]struct{}
}

const maxValidatedQueries = 16384

func (v *validatedQueries) validate(query string) error {
	v.mu.Lock()
	_, ok := v.ok[query]
	v.mu.Unlock()
	if ok {
		return nil
	}
	if err := metricsq.Validate(query); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ok == nil || len(v.ok) >= maxValidatedQueries {
		v.ok = map[string]struct{}{}
	}
	v.ok[query] = struct{}{}
	return nil
}
