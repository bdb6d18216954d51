package analysis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/prometheus"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/providers/web"
)

// Default limits, as Argo Rollouts has them.
const (
	DefaultConsecutiveErrorLimit = 4
	DefaultMeasurementRetention  = 10
)

// newFactories lists every provider kind. A new provider is its package plus one line
// here: the engine, template validation and lint find it through this list.
func newFactories(defaultPrometheus string) []providers.Factory {
	return []providers.Factory{
		prometheus.NewFactory(prometheus.Options{DefaultAddress: defaultPrometheus}),
		web.NewFactory(web.Options{}),
	}
}

// Engine turns run specs into plans and plans into measurements. One serves the whole
// process: compiled conditions and provider clients are shared by every run.
type Engine struct {
	Conditions *CompileCache
	exec       *shared.Executor
	factories  []providers.Factory
}

// NewEngine builds an engine whose provider calls all go through exec.
func NewEngine(exec *shared.Executor, defaultPrometheus string) *Engine {
	return &Engine{Conditions: NewCompileCache(4096), exec: exec, factories: newFactories(defaultPrometheus)}
}

// Plan is a run spec made executable: args resolved, queries rendered and checked,
// conditions compiled, providers ready.
type Plan struct {
	Metrics []*PlannedMetric
	// secrets are the resolved secret values, masked in every message the plan writes.
	secrets []string
}

// PlannedMetric is one metric ready to measure.
type PlannedMetric struct {
	Spec         v1alpha1.Metric
	Provider     providers.Provider
	Success      *Condition
	Failure      *Condition
	DryRun       bool
	Retention    int
	Interval     time.Duration
	InitialDelay time.Duration
	// Count is the number of counted measurements that ends the metric; 0 means no limit.
	Count                   int32
	FailureLimit            int32
	InconclusiveLimit       int32
	ConsecutiveErrorLimit   int32
	ConsecutiveSuccessLimit int32
	NoData                  v1alpha1.NoDataPolicy
}

// MetricPath is the field path of the i-th metric m of a spec: by name, as status and
// messages name metrics, or by index while it has none.
func MetricPath(i int, m v1alpha1.Metric) *field.Path {
	if m.Name == "" {
		return field.NewPath("metrics").Index(i)
	}
	return field.NewPath("metrics").Key(m.Name)
}

// Prepare checks and compiles spec; nothing is measured for a spec that does not prepare.
// The error reports every problem at once, each on a new line: errors.As finds a
// *field.Error in it, fielderr.From lists them all with their causes (such as a
// *metricsq.UndefinedArgError), and field paths are relative to spec, e.g.
// metrics[success-rate].provider.prometheus.query.
func (e *Engine) Prepare(ctx context.Context, spec *v1alpha1.AnalysisRunSpec, secret providers.SecretFunc) (*Plan, error) {
	plan := &Plan{}
	var errs fielderr.List
	env := providers.Env{Args: map[string]string{}}
	if secret != nil {
		env.Secret = func(ctx context.Context, name, key string) (string, error) {
			v, err := secret(ctx, name, key)
			if err == nil {
				plan.secrets = append(plan.secrets, v)
			}
			return v, err
		}
	}
	// An arg whose Secret cannot be read is reported once, not again by every query
	// that uses it.
	unresolved := map[string]bool{}
	for _, a := range spec.Args {
		ref := field.NewPath("args").Key(a.Name).Child("valueFrom", "secretKeyRef")
		switch {
		case a.Value != nil:
			env.Args[a.Name] = *a.Value
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil && env.Secret == nil:
			errs.Add(field.Forbidden(ref, "secrets cannot be read here; pass the value as an argument"))
			unresolved[a.Name] = true
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil:
			before := len(errs)
			v := env.ReadSecret(ctx, ref, a.ValueFrom.SecretKeyRef, &errs)
			if len(errs) > before {
				unresolved[a.Name] = true
				continue
			}
			env.Args[a.Name] = v
		}
		// An arg without a value is an error only if a query uses it: rendering names it.
	}
	if len(spec.Metrics) == 0 {
		errs.Add(field.Required(field.NewPath("metrics"), "at least one metric is required"))
	}
	checkNames(spec.Metrics, &errs)
	for i, m := range spec.Metrics {
		plan.Metrics = append(plan.Metrics, e.prepareMetric(ctx, MetricPath(i, m), spec, m, env, &errs))
	}
	errs = slices.DeleteFunc(errs, func(p *fielderr.Error) bool {
		undefined, ok := errors.AsType[*metricsq.UndefinedArgError](p.Cause)
		return ok && unresolved[undefined.Name]
	})
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	return plan, nil
}

// checkNames reports metrics without a name or with one an earlier metric has.
func checkNames(metrics []v1alpha1.Metric, errs *fielderr.List) {
	seen := map[string]bool{}
	for i, m := range metrics {
		path := MetricPath(i, m).Child("name")
		switch {
		case m.Name == "":
			errs.Add(field.Required(path, "a name is required"))
		case seen[m.Name]:
			errs.Add(fielderr.WithDetail(field.Duplicate(path, m.Name), fmt.Sprintf("duplicate metric name %q", m.Name)))
		}
		seen[m.Name] = true
	}
}

// prepareMetric plans m, the metric at path, adding every problem it has to errs.
func (e *Engine) prepareMetric(ctx context.Context, path *field.Path, spec *v1alpha1.AnalysisRunSpec, m v1alpha1.Metric, env providers.Env, errs *fielderr.List) *PlannedMetric {
	pm := &PlannedMetric{
		Spec:                    m,
		DryRun:                  matchesMetric(m.Name, dryRunNames(spec.DryRun)),
		Retention:               retention(m.Name, spec.MeasurementRetention),
		FailureLimit:            ptr.Deref(m.FailureLimit, 0),
		InconclusiveLimit:       ptr.Deref(m.InconclusiveLimit, 0),
		ConsecutiveErrorLimit:   ptr.Deref(m.ConsecutiveErrorLimit, DefaultConsecutiveErrorLimit),
		ConsecutiveSuccessLimit: ptr.Deref(m.ConsecutiveSuccessLimit, 0),
		NoData:                  m.NoData,
	}
	switch pm.NoData {
	case "":
		pm.NoData = v1alpha1.NoDataInconclusive
	case v1alpha1.NoDataInconclusive, v1alpha1.NoDataFailed, v1alpha1.NoDataError, v1alpha1.NoDataEvaluate:
	default:
		errs.Add(field.Invalid(path.Child("noData"), m.NoData, fmt.Sprintf("%q is not one of Inconclusive, Failed, Error, Evaluate", m.NoData)))
	}
	interval, err := providers.ParseDuration(m.Interval)
	switch {
	case err != nil:
		errs.Invalid(path.Child("interval"), string(m.Interval), err)
	case interval%time.Second != 0:
		// Ticks are persisted with second precision; a fractional interval would repeat
		// or skip ticks after a restart.
		errs.Add(field.Invalid(path.Child("interval"), string(m.Interval), fmt.Sprintf("%s is not a whole number of seconds", interval)))
	}
	pm.Interval = interval
	pm.InitialDelay = providers.Duration(path.Child("initialDelay"), m.InitialDelay, errs)
	switch {
	case m.Count != nil:
		pm.Count = *m.Count
	case pm.Interval == 0:
		pm.Count = 1
	}
	// Without a valid interval these would only repeat the interval's problem.
	if err == nil {
		checkLimits(path, pm, errs)
	}
	if m.SuccessCondition != "" {
		if pm.Success, err = e.Conditions.Get(m.SuccessCondition); err != nil {
			errs.Invalid(path.Child("successCondition"), m.SuccessCondition, err)
		}
	}
	if m.FailureCondition != "" {
		if pm.Failure, err = e.Conditions.Get(m.FailureCondition); err != nil {
			errs.Invalid(path.Child("failureCondition"), m.FailureCondition, err)
		}
	}
	pm.Provider = e.provider(ctx, path.Child("provider"), &m.Provider, env, errs)
	return pm
}

// checkLimits rejects limits that make a verdict impossible, which would otherwise show up
// only as a release that never moves.
func checkLimits(path *field.Path, pm *PlannedMetric, errs *fielderr.List) {
	if pm.Count > 1 && pm.Interval == 0 {
		errs.Add(field.Invalid(path.Child("count"), pm.Count, fmt.Sprintf("count %d needs an interval", pm.Count)))
	}
	if pm.Count > 0 && pm.FailureLimit >= pm.Count {
		errs.Add(field.Invalid(path.Child("failureLimit"), pm.FailureLimit, fmt.Sprintf("failureLimit %d is not below count %d: the metric could never fail", pm.FailureLimit, pm.Count)))
	}
	if pm.Count > 0 && pm.ConsecutiveSuccessLimit > pm.Count {
		errs.Add(field.Invalid(path.Child("consecutiveSuccessLimit"), pm.ConsecutiveSuccessLimit, fmt.Sprintf("consecutiveSuccessLimit %d exceeds count %d", pm.ConsecutiveSuccessLimit, pm.Count)))
	}
}

// provider builds the provider p, the field at path, configures: exactly one kind must.
func (e *Engine) provider(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env, errs *fielderr.List) providers.Provider {
	var set []providers.Factory
	for _, f := range e.factories {
		if f.Configured(p) {
			set = append(set, f)
		}
	}
	if len(set) != 1 {
		errs.Add(field.Invalid(path, field.OmitValueType{}, fmt.Sprintf("exactly one provider (%s) must be set", kindNames(e.factories))))
		return nil
	}
	src, problems := set[0].Build(ctx, path, p, env)
	*errs = append(*errs, problems...)
	if len(problems) > 0 {
		return nil
	}
	return e.exec.Provider(src)
}

// kindNames lists the provider kinds for a message: "prometheus or web".
func kindNames(fs []providers.Factory) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name()
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Mask replaces every resolved secret value in s, so no status, event or log shows one.
func (p *Plan) Mask(s string) string {
	for _, v := range p.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "*****")
		}
	}
	return s
}

func dryRunNames(d []v1alpha1.DryRun) []string {
	names := make([]string, len(d))
	for i, x := range d {
		names[i] = x.MetricName
	}
	return names
}

func matchesMetric(name string, patterns []string) bool {
	for _, p := range patterns {
		if p == "*" || p == name {
			return true
		}
	}
	return false
}

func retention(name string, rs []v1alpha1.MeasurementRetention) int {
	limit := DefaultMeasurementRetention
	for _, r := range rs {
		if r.MetricName == name {
			return int(r.Limit)
		}
		if r.MetricName == "*" {
			limit = int(r.Limit)
		}
	}
	return limit
}

// checkFactories serve CheckProvider, which has no engine: checks read no options.
var checkFactories = sync.OnceValue(func() []providers.Factory { return newFactories("") })

// CheckProvider reports what admission rejects in p, the provider field at path, by the
// rules of each kind it configures, for tools that check a spec with no API server.
func CheckProvider(path *field.Path, p *v1alpha1.MetricProvider) field.ErrorList {
	var errs field.ErrorList
	for _, f := range checkFactories() {
		if f.Configured(p) {
			errs = append(errs, f.Check(path, p)...)
		}
	}
	return errs
}
