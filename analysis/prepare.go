package analysis

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/job"
	judgeprovider "github.com/promgate/promgate/providers/judge"
	"github.com/promgate/promgate/providers/prometheus"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/providers/unsupported"
	"github.com/promgate/promgate/providers/web"
)

// Default limits, as Argo Rollouts has them.
const (
	DefaultConsecutiveErrorLimit = 4
	DefaultMeasurementRetention  = 10
)

// Cluster is what the kinds that act in the cluster (job) work with; the zero value is no
// cluster, as in the CLI, where their metrics are refused.
type Cluster struct {
	// Client creates, reads and deletes the objects measurements use; reads may be cached.
	Client client.Client
	// Pods lists pods and reads their logs, straight from the API server.
	Pods corev1client.PodsGetter
}

// newFactories lists every provider kind. A new provider is its package plus one line
// here: the engine, template validation and lint find it through this list. exec runs
// the queries of kinds made of other kinds' queries (the judge); it may be nil where
// nothing is built.
func newFactories(exec *shared.Executor, defaultPrometheus string, cluster Cluster) []providers.Factory {
	return slices.Concat([]providers.Factory{
		prometheus.NewFactory(prometheus.Options{DefaultAddress: defaultPrometheus}),
		web.NewFactory(web.Options{}),
		judgeprovider.NewFactory(judgeprovider.Options{DefaultAddress: defaultPrometheus, Executor: exec}),
		job.NewFactory(job.Options{Client: cluster.Client, Pods: cluster.Pods}),
	}, unsupported.Factories())
}

// Engine turns run specs into plans and plans into measurements. One serves the whole
// process: compiled conditions and provider clients are shared by every run.
type Engine struct {
	Conditions *CompileCache
	exec       *shared.Executor
	factories  []providers.Factory
}

// NewEngine builds an engine whose provider calls all go through exec; metrics that name
// no Prometheus address use defaultPrometheus, and job metrics run in cluster.
func NewEngine(exec *shared.Executor, defaultPrometheus string, cluster Cluster) *Engine {
	return &Engine{Conditions: NewCompileCache(4096), exec: exec, factories: newFactories(exec, defaultPrometheus, cluster)}
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
	// Spec is the metric with its args rendered.
	Spec         v1alpha1.Metric
	Provider     providers.Provider
	Success      *Condition
	Failure      *Condition
	DryRun       bool
	Retention    int
	Interval     time.Duration
	InitialDelay time.Duration
	// Count is the number of counted measurements that ends the metric; 0 means no limit.
	Count int32
	// FailureLimit is -1 when disabled, as in Argo Rollouts.
	FailureLimit          int32
	InconclusiveLimit     int32
	ConsecutiveErrorLimit int32
	// ConsecutiveSuccessLimit is 0 when not used.
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

// Prepare checks and compiles spec, the spec of run (nil where there is no cluster, as in
// the CLI); nothing is measured for a spec that does not prepare. The error reports
// every problem at once, each on a new line: errors.As finds a *field.Error in it,
// fielderr.From lists them all with their causes (such as a *metricsq.UndefinedArgError),
// and field paths are relative to spec, e.g. metrics[success-rate].provider.prometheus.query.
func (e *Engine) Prepare(ctx context.Context, spec *v1alpha1.AnalysisRunSpec, secret providers.SecretFunc, run *providers.Run) (*Plan, error) {
	plan := &Plan{}
	var errs fielderr.List
	env := providers.Env{Run: run, Mask: func(v string) { plan.secrets = append(plan.secrets, v) }}
	if secret != nil {
		env.Secret = func(ctx context.Context, name, key string) (string, error) {
			v, err := secret(ctx, name, key)
			if err == nil {
				plan.secrets = append(plan.secrets, v)
			}
			return v, err
		}
	}
	args := map[string]string{}
	// An arg whose value cannot be had is reported once, not again by every field that
	// uses it.
	unresolved := map[string]bool{}
	for _, a := range spec.Args {
		from := field.NewPath("args").Key(a.Name).Child("valueFrom")
		switch {
		case a.Value != nil:
			args[a.Name] = *a.Value
		case a.ValueFrom != nil && a.ValueFrom.FieldRef != nil:
			errs.Add(field.Invalid(from.Child("fieldRef"), a.ValueFrom.FieldRef.FieldPath, "a Rollout resolves fieldRef when it creates the run; a run created otherwise gives the value"))
			unresolved[a.Name] = true
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil && env.Secret == nil:
			errs.Add(field.Forbidden(from.Child("secretKeyRef"), "secrets cannot be read here; pass the value as an argument"))
			unresolved[a.Name] = true
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil:
			before := len(errs)
			v := env.ReadSecret(ctx, from.Child("secretKeyRef"), a.ValueFrom.SecretKeyRef, &errs)
			if len(errs) > before {
				unresolved[a.Name] = true
				continue
			}
			args[a.Name] = v
		}
		// An arg without a value is an error only if a field uses it: rendering names it.
	}
	if len(spec.Metrics) == 0 {
		errs.Add(field.Required(field.NewPath("metrics"), "at least one metric is required"))
	}
	checkNames(spec.Metrics, &errs)
	sel := newSelection(spec.Metrics, spec.DryRun, spec.MeasurementRetention, true, &errs)
	for i, m := range spec.Metrics {
		pm, _ := e.prepareMetric(ctx, MetricPath(i, m), sel, m, env, renderer{args: args}, &errs)
		plan.Metrics = append(plan.Metrics, pm)
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

// Release deletes what the measurements of run, whose spec is spec, left in the cluster
// (the job kind's Jobs), once the run has ended.
func (e *Engine) Release(ctx context.Context, spec *v1alpha1.AnalysisRunSpec, run providers.Run) error {
	var errs []error
	for _, f := range e.factories {
		r, ok := f.(providers.Releaser)
		if ok && slices.ContainsFunc(spec.Metrics, func(m v1alpha1.Metric) bool { return f.Configured(&m.Provider) }) {
			errs = append(errs, r.Release(ctx, run))
		}
	}
	return errors.Join(errs...)
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

// prepareMetric plans m, the metric at path, adding every problem it has to errs, and
// returns the warnings about it: conditions written for a shape of result its query
// never returns.
func (e *Engine) prepareMetric(ctx context.Context, path *field.Path, sel selection, m v1alpha1.Metric, env providers.Env, r renderer, out *fielderr.List) (*PlannedMetric, fielderr.List) {
	var found fielderr.List
	errs := &found
	m, did := r.render(path, m, errs)
	pm := &PlannedMetric{
		Spec:                    m,
		DryRun:                  sel.dryRun(m.Name),
		Retention:               sel.retention(m.Name),
		FailureLimit:            limit(path.Child("failureLimit"), m.FailureLimit, 0, -1, errs),
		InconclusiveLimit:       limit(path.Child("inconclusiveLimit"), m.InconclusiveLimit, 0, 0, errs),
		ConsecutiveErrorLimit:   limit(path.Child("consecutiveErrorLimit"), m.ConsecutiveErrorLimit, DefaultConsecutiveErrorLimit, 0, errs),
		ConsecutiveSuccessLimit: limit(path.Child("consecutiveSuccessLimit"), m.ConsecutiveSuccessLimit, 0, 0, errs),
		Count:                   limit(path.Child("count"), m.Count, 0, 0, errs),
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
	// As in Argo Rollouts: without a count, one measurement, unless an interval asks for
	// measurements until a limit or the run ends them.
	if pm.Count == 0 && pm.Interval == 0 {
		pm.Count = 1
	}
	// Without a valid interval these would only repeat the interval's problem.
	if err == nil {
		checkLimits(path, pm, errs)
	}
	f := e.kind(&m.Provider)
	for _, c := range []struct {
		field, src string
		dst        **Condition
	}{{"successCondition", m.SuccessCondition, &pm.Success}, {"failureCondition", m.FailureCondition, &pm.Failure}} {
		if c.src == "" {
			continue
		}
		cpath := path.Child(c.field)
		if f != nil && f.Answers() == providers.Verdicts {
			errs.Add(field.Forbidden(cpath, fmt.Sprintf("a %s metric is decided by its provider itself; a condition could only contradict it", f.Name())))
			continue
		}
		cond, err := e.Conditions.Get(c.src)
		if err == nil && (f == nil || f.Answers() == providers.Numbers) {
			err = cond.ReadsNumbers()
		}
		if err != nil {
			errs.Invalid(cpath, c.src, err)
			continue
		}
		*c.dst = cond
	}
	var src providers.Description
	pm.Provider, src = e.provider(ctx, path.Child("provider"), &m.Provider, f, env, m.Name, errs)
	var warnings fielderr.List
	for _, c := range []struct {
		field string
		cond  *Condition
	}{{"successCondition", pm.Success}, {"failureCondition", pm.Failure}} {
		if c.cond == nil {
			continue
		}
		if w := shapeWarning(c.cond, src.Type); w != "" {
			warnings.Add(field.Invalid(path.Child(c.field), c.cond.String(), w))
		}
	}
	*out = append(*out, did.explain(found)...)
	return pm, warnings
}

// shapeWarning says why every measurement would be an Error when a condition reads only
// one shape of result and the query, whose PromQL type is typ, always returns the other.
func shapeWarning(c *Condition, typ model.ValueType) string {
	switch {
	case (typ == model.ValVector || typ == model.ValMatrix) && !c.readsVector() && c.readsScalar():
		return fmt.Sprintf("uses result as a number but the query returns a %s, a list: every measurement would be Error; read result[0], or wrap the query in scalar()", typ)
	case typ == model.ValScalar && c.readsVector() && !c.readsScalar():
		return "reads result as a list but the query returns a scalar, a number: every measurement would be Error; read result"
	}
	return ""
}

// limit reads v, the integer field at path, or def when it is unset; below min is a
// problem. A string holds the integer when args render into the field.
func limit(path *field.Path, v *intstr.IntOrString, def, min int32, errs *fielderr.List) int32 {
	if v == nil {
		return def
	}
	n := v.IntVal
	if v.Type == intstr.String {
		parsed, err := strconv.ParseInt(strings.TrimSpace(v.StrVal), 10, 32)
		if err != nil {
			errs.Add(field.Invalid(path, v.StrVal, fmt.Sprintf("%q is not an integer", v.StrVal)))
			return def
		}
		n = int32(parsed)
	}
	if n < min {
		errs.Add(field.Invalid(path, n, fmt.Sprintf("%d is below the minimum %d", n, min)))
		return def
	}
	return n
}

// checkLimits rejects limits that make a verdict impossible, which would otherwise show up
// only as a release that never moves or never fails: Argo Rollouts' rules, and one more,
// a failureLimit that count never lets be exceeded.
func checkLimits(path *field.Path, pm *PlannedMetric, errs *fielderr.List) {
	if pm.Count > 1 && pm.Interval == 0 {
		errs.Add(field.Invalid(path.Child("count"), pm.Count, fmt.Sprintf("count %d needs an interval", pm.Count)))
	}
	if pm.FailureLimit < 0 && pm.ConsecutiveSuccessLimit == 0 {
		errs.Add(field.Invalid(path.Child("failureLimit"), pm.FailureLimit, "failureLimit -1 needs a consecutiveSuccessLimit: with both disabled nothing could fail the metric"))
	}
	if pm.Count == 0 {
		return
	}
	switch {
	case pm.FailureLimit >= pm.Count:
		errs.Add(field.Invalid(path.Child("failureLimit"), pm.FailureLimit, fmt.Sprintf("failureLimit %d is not below count %d: the metric could never fail", pm.FailureLimit, pm.Count)))
	case pm.FailureLimit < 0 && pm.ConsecutiveSuccessLimit > pm.Count:
		errs.Add(field.Invalid(path.Child("consecutiveSuccessLimit"), pm.ConsecutiveSuccessLimit, fmt.Sprintf("consecutiveSuccessLimit %d exceeds count %d", pm.ConsecutiveSuccessLimit, pm.Count)))
	case pm.FailureLimit >= 0 && pm.ConsecutiveSuccessLimit > 0 && pm.FailureLimit+pm.ConsecutiveSuccessLimit > pm.Count:
		errs.Add(field.Invalid(path.Child("consecutiveSuccessLimit"), pm.ConsecutiveSuccessLimit, fmt.Sprintf("count %d is below failureLimit + consecutiveSuccessLimit (%d + %d)", pm.Count, pm.FailureLimit, pm.ConsecutiveSuccessLimit)))
	}
	if pm.InconclusiveLimit > pm.Count {
		errs.Add(field.Invalid(path.Child("inconclusiveLimit"), pm.InconclusiveLimit, fmt.Sprintf("inconclusiveLimit %d exceeds count %d", pm.InconclusiveLimit, pm.Count)))
	}
}

// kind returns the one provider kind p configures, nil when it configures none or more.
func (e *Engine) kind(p *v1alpha1.MetricProvider) providers.Factory {
	var set []providers.Factory
	for _, f := range e.factories {
		if f.Configured(p) {
			set = append(set, f)
		}
	}
	if len(set) != 1 {
		return nil
	}
	return set[0]
}

// provider builds p, the field at path, with f, the one kind it configures (nil: none or
// more, a problem), and returns what its source asks too.
func (e *Engine) provider(ctx context.Context, path *field.Path, p *v1alpha1.MetricProvider, f providers.Factory, env providers.Env, metric string, errs *fielderr.List) (providers.Provider, providers.Description) {
	if f == nil {
		errs.Add(field.Invalid(path, field.OmitValueType{}, fmt.Sprintf("exactly one provider (%s) must be set", kindNames(e.factories))))
		return nil, providers.Description{}
	}
	env.Metric = metric
	src, problems := f.Build(ctx, path, p, env)
	*errs = append(*errs, problems...)
	if len(problems) > 0 {
		return nil, providers.Description{}
	}
	return e.exec.Provider(src), src.Describe()
}

// kindNames lists the provider kinds promgate implements for a message: "prometheus, web,
// judge or job".
func kindNames(fs []providers.Factory) string {
	var names []string
	for _, f := range fs {
		if !unsupported.Is(f) {
			names = append(names, f.Name())
		}
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

// selection is which metrics dryRun and measurementRetention select. A metricName is "*"
// for every metric, a metric's name, or a regular expression matched against whole
// names, such as Argo Rollouts' ".*".
type selection struct {
	dry  []*regexp.Regexp
	kept []retentionRule
}

type retentionRule struct {
	name  string
	match *regexp.Regexp
	limit int
}

// newSelection compiles the rules of dryRun and measurementRetention; a rule that is no
// regular expression, or, when mustMatch, selects no metric, is a problem: a misspelt
// name would silently let a metric meant to be dry-run decide the verdict.
func newSelection(metrics []v1alpha1.Metric, dry []v1alpha1.DryRun, retention []v1alpha1.MeasurementRetention, mustMatch bool, errs *fielderr.List) selection {
	var sel selection
	compile := func(path *field.Path, pattern string) *regexp.Regexp {
		if pattern == "*" {
			pattern = ".*"
		}
		re, err := regexp.Compile("^(?:" + pattern + ")$")
		if err != nil {
			if slices.ContainsFunc(metrics, func(m v1alpha1.Metric) bool { return m.Name == pattern }) {
				return regexp.MustCompile("^" + regexp.QuoteMeta(pattern) + "$")
			}
			errs.Add(field.Invalid(path, pattern, fmt.Sprintf("is neither a metric's name, \"*\" nor a regular expression: %v", err)))
			return nil
		}
		if mustMatch && !slices.ContainsFunc(metrics, func(m v1alpha1.Metric) bool { return re.MatchString(m.Name) }) {
			errs.Add(fielderr.WithDetail(field.NotFound(path, pattern), fmt.Sprintf("no metric named %q or matching it (use a metric's name, \"*\" or a regular expression such as \".*\")", pattern)))
		}
		return re
	}
	for i, d := range dry {
		if re := compile(field.NewPath("dryRun").Index(i).Child("metricName"), d.MetricName); re != nil {
			sel.dry = append(sel.dry, re)
		}
	}
	for i, r := range retention {
		p := field.NewPath("measurementRetention").Index(i)
		if re := compile(p.Child("metricName"), r.MetricName); re != nil {
			sel.kept = append(sel.kept, retentionRule{name: r.MetricName, match: re, limit: int(r.Limit)})
		}
		if r.Limit < 1 || r.Limit > 1000 {
			errs.Add(field.Invalid(p.Child("limit"), r.Limit, fmt.Sprintf("%d is not between 1 and 1000", r.Limit)))
		}
	}
	return sel
}

func (s selection) dryRun(name string) bool {
	return slices.ContainsFunc(s.dry, func(re *regexp.Regexp) bool { return re.MatchString(name) })
}

// retention is the limit of the rule naming the metric exactly, else of the last rule
// that matches it, else the default.
func (s selection) retention(name string) int {
	limit := DefaultMeasurementRetention
	for _, r := range s.kept {
		if r.name == name {
			return r.limit
		}
		if r.match.MatchString(name) {
			limit = r.limit
		}
	}
	return limit
}

// checkFactories serve CheckProvider, which has no engine: checks read no options.
var checkFactories = sync.OnceValue(func() []providers.Factory { return newFactories(nil, "", Cluster{}) })

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
