package analysis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/config"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/prometheus"
	"github.com/promgate/promgate/providers/web"
)

// Default limits, as Argo Rollouts has them.
const (
	DefaultConsecutiveErrorLimit = 4
	DefaultMeasurementRetention  = 10
	defaultRangeStep             = time.Minute
)

// SpecError is a problem in a run or template spec, located by its field path.
type SpecError struct {
	// Field is the path in the spec, e.g. metrics[success-rate].provider.prometheus.query.
	Field string
	// Err is what is wrong.
	Err error
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *SpecError) Unwrap() error { return e.Err }

func specErr(field string, format string, args ...any) error {
	return &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
}

// SecretFunc returns the value of a key of a Secret in the run's namespace.
type SecretFunc func(ctx context.Context, name, key string) (string, error)

// Engine turns run specs into plans and plans into measurements. One serves the whole
// process: compiled conditions and provider clients are shared by every run.
type Engine struct {
	Conditions *CompileCache
	Prometheus *prometheus.Factory
	Web        *web.Factory
	// queries remembers rendered PromQL that parsed: every reconcile prepares its run
	// again, and parsing is the costliest part of that.
	queries validatedQueries
}

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

// NewEngine builds an engine whose queries all go through exec.
func NewEngine(exec *metricsq.Executor, defaultPrometheus string) (*Engine, error) {
	prom, err := prometheus.NewFactory(exec, prometheus.Options{DefaultAddress: defaultPrometheus})
	if err != nil {
		return nil, err
	}
	w, err := web.NewFactory(exec, web.Options{})
	if err != nil {
		return nil, err
	}
	return &Engine{Conditions: NewCompileCache(4096), Prometheus: prom, Web: w}, nil
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

// Prepare checks and compiles spec. Any problem is a *SpecError naming the metric and
// field; nothing is measured for a spec that does not prepare.
func (e *Engine) Prepare(ctx context.Context, spec *v1alpha1.AnalysisRunSpec, secret SecretFunc) (*Plan, error) {
	plan := &Plan{}
	args := map[string]string{}
	for _, a := range spec.Args {
		field := fmt.Sprintf("args[%s]", a.Name)
		switch {
		case a.Value != nil:
			args[a.Name] = *a.Value
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil:
			if secret == nil {
				return nil, specErr(field+".valueFrom.secretKeyRef", "secrets cannot be read here; pass the value as an argument")
			}
			ref := a.ValueFrom.SecretKeyRef
			v, err := secret(ctx, ref.Name, ref.Key)
			if err != nil {
				return nil, specErr(field+".valueFrom.secretKeyRef", "reading key %q of Secret %q: %w", ref.Key, ref.Name, err)
			}
			args[a.Name] = v
			plan.secrets = append(plan.secrets, v)
		}
		// An arg without a value is an error only if a query uses it: Render names it.
	}
	if len(spec.Metrics) == 0 {
		return nil, specErr("metrics", "at least one metric is required")
	}
	seen := map[string]bool{}
	for i, m := range spec.Metrics {
		if m.Name == "" {
			return nil, specErr(fmt.Sprintf("metrics[%d].name", i), "a name is required")
		}
		if seen[m.Name] {
			return nil, specErr(fmt.Sprintf("metrics[%d].name", i), "duplicate metric name %q", m.Name)
		}
		seen[m.Name] = true
		pm, err := e.prepareMetric(ctx, spec, m, args, secret, plan)
		if err != nil {
			return nil, err
		}
		plan.Metrics = append(plan.Metrics, pm)
	}
	return plan, nil
}

func (e *Engine) prepareMetric(ctx context.Context, spec *v1alpha1.AnalysisRunSpec, m v1alpha1.Metric, args map[string]string, secret SecretFunc, plan *Plan) (*PlannedMetric, error) {
	field := fmt.Sprintf("metrics[%s]", m.Name)
	pm := &PlannedMetric{
		Spec:                  m,
		DryRun:                matchesMetric(m.Name, dryRunNames(spec.DryRun)),
		Retention:             retention(m.Name, spec.MeasurementRetention),
		FailureLimit:          deref(m.FailureLimit, 0),
		InconclusiveLimit:     deref(m.InconclusiveLimit, 0),
		ConsecutiveErrorLimit: deref(m.ConsecutiveErrorLimit, DefaultConsecutiveErrorLimit),
		NoData:                m.NoData,
	}
	switch pm.NoData {
	case "":
		pm.NoData = v1alpha1.NoDataInconclusive
	case v1alpha1.NoDataInconclusive, v1alpha1.NoDataFailed, v1alpha1.NoDataError, v1alpha1.NoDataEvaluate:
	default:
		return nil, specErr(field+".noData", "%q is not one of Inconclusive, Failed, Error, Evaluate", pm.NoData)
	}
	var err error
	if pm.Interval, err = parseDuration(m.Interval); err != nil {
		return nil, specErr(field+".interval", "%v", err)
	}
	if pm.Interval%time.Second != 0 {
		// Ticks are persisted with second precision; a fractional interval would repeat
		// or skip ticks after a restart.
		return nil, specErr(field+".interval", "%s is not a whole number of seconds", pm.Interval)
	}
	if pm.InitialDelay, err = parseDuration(m.InitialDelay); err != nil {
		return nil, specErr(field+".initialDelay", "%v", err)
	}
	switch {
	case m.Count != nil:
		pm.Count = *m.Count
	case pm.Interval == 0:
		pm.Count = 1
	}
	if pm.Count > 1 && pm.Interval == 0 {
		return nil, specErr(field+".count", "count %d needs an interval", pm.Count)
	}
	if m.ConsecutiveSuccessLimit != nil {
		pm.ConsecutiveSuccessLimit = *m.ConsecutiveSuccessLimit
	}
	if err := checkLimits(pm); err != nil {
		return nil, specErr(field, "%v", err)
	}
	if m.SuccessCondition != "" {
		if pm.Success, err = e.Conditions.Get(m.SuccessCondition); err != nil {
			return nil, specErr(field+".successCondition", "%v", err)
		}
	}
	if m.FailureCondition != "" {
		if pm.Failure, err = e.Conditions.Get(m.FailureCondition); err != nil {
			return nil, specErr(field+".failureCondition", "%v", err)
		}
	}
	switch p := m.Provider; {
	case p.Prometheus != nil && p.Web == nil:
		pm.Provider, err = e.prometheusProvider(ctx, field+".provider.prometheus", p.Prometheus, args, secret, plan)
	case p.Web != nil && p.Prometheus == nil:
		pm.Provider, err = e.webProvider(ctx, field+".provider.web", p.Web, args, secret, plan)
	default:
		err = specErr(field+".provider", "exactly one provider (prometheus or web) must be set")
	}
	if err != nil {
		return nil, err
	}
	return pm, nil
}

// checkLimits rejects limits that make a verdict impossible, which would otherwise show up
// only as a release that never moves.
func checkLimits(pm *PlannedMetric) error {
	if pm.Count > 0 && pm.FailureLimit >= pm.Count {
		return fmt.Errorf("failureLimit %d is not below count %d: the metric could never fail", pm.FailureLimit, pm.Count)
	}
	if pm.Count > 0 && pm.ConsecutiveSuccessLimit > pm.Count {
		return fmt.Errorf("consecutiveSuccessLimit %d exceeds count %d", pm.ConsecutiveSuccessLimit, pm.Count)
	}
	return nil
}

func (e *Engine) prometheusProvider(ctx context.Context, field string, p *v1alpha1.PrometheusMetric, args map[string]string, secret SecretFunc, plan *Plan) (providers.Provider, error) {
	query, err := metricsq.Render(p.Query, args)
	if err != nil {
		return nil, specErr(field+".query", "%v", err)
	}
	if err := e.queries.validate(query); err != nil {
		return nil, specErr(field+".query", "%v", err)
	}
	address, err := metricsq.Render(p.Address, args)
	if err != nil {
		return nil, specErr(field+".address", "%v", err)
	}
	cfg := prometheus.Config{Address: address, Query: query}
	if cfg.Timeout, err = parseDuration(p.Timeout); err != nil {
		return nil, specErr(field+".timeout", "%v", err)
	}
	if p.Range != nil {
		window, err := parseDuration(p.Range.Window)
		if err != nil || window <= 0 {
			return nil, specErr(field+".range.window", "a positive duration is required")
		}
		step, err := parseDuration(p.Range.Step)
		if err != nil {
			return nil, specErr(field+".range.step", "%v", err)
		}
		if step == 0 {
			step = defaultRangeStep
		}
		cfg.Range = &prometheus.Range{Window: window, Step: step}
	}
	if cfg.Headers, err = renderHeaders(field, p.Headers, args); err != nil {
		return nil, err
	}
	if cfg.HTTP, err = httpConfig(ctx, field+".auth", p.Auth, secret, plan); err != nil {
		return nil, err
	}
	prov, err := e.Prometheus.New(cfg)
	if err != nil {
		return nil, specErr(field, "%v", err)
	}
	return prov, nil
}

func (e *Engine) webProvider(ctx context.Context, field string, w *v1alpha1.WebMetric, args map[string]string, secret SecretFunc, plan *Plan) (providers.Provider, error) {
	url, err := metricsq.Render(w.URL, args)
	if err != nil {
		return nil, specErr(field+".url", "%v", err)
	}
	body, err := metricsq.Render(w.Body, args)
	if err != nil {
		return nil, specErr(field+".body", "%v", err)
	}
	switch w.Method {
	case "", "GET", "POST":
	default:
		return nil, specErr(field+".method", "%q is not GET or POST", w.Method)
	}
	cfg := web.Config{URL: url, Method: w.Method, Body: body, JSONPath: w.JSONPath}
	if cfg.Timeout, err = parseDuration(w.Timeout); err != nil {
		return nil, specErr(field+".timeout", "%v", err)
	}
	if cfg.Headers, err = renderHeaders(field, w.Headers, args); err != nil {
		return nil, err
	}
	if cfg.HTTP, err = httpConfig(ctx, field+".auth", w.Auth, secret, plan); err != nil {
		return nil, err
	}
	prov, err := e.Web.New(cfg)
	if err != nil {
		return nil, specErr(field, "%v", err)
	}
	return prov, nil
}

func renderHeaders(field string, hs []v1alpha1.Header, args map[string]string) (map[string]string, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(hs))
	for _, h := range hs {
		v, err := metricsq.Render(h.Value, args)
		if err != nil {
			return nil, specErr(fmt.Sprintf("%s.headers[%s]", field, h.Key), "%v", err)
		}
		out[h.Key] = v
	}
	return out, nil
}

// httpConfig maps the API's auth onto prometheus/common's HTTPClientConfig with the
// secrets read from the run's namespace.
func httpConfig(ctx context.Context, field string, auth *v1alpha1.HTTPAuth, secret SecretFunc, plan *Plan) (config.HTTPClientConfig, error) {
	cfg := config.DefaultHTTPClientConfig
	if auth == nil {
		return cfg, nil
	}
	read := func(f string, ref *v1alpha1.SecretKeySelector) (string, error) {
		if secret == nil {
			return "", specErr(f, "secrets cannot be read here")
		}
		v, err := secret(ctx, ref.Name, ref.Key)
		if err != nil {
			return "", specErr(f, "reading key %q of Secret %q: %w", ref.Key, ref.Name, err)
		}
		plan.secrets = append(plan.secrets, v)
		return v, nil
	}
	if auth.BearerTokenSecret != nil {
		token, err := read(field+".bearerTokenSecret", auth.BearerTokenSecret)
		if err != nil {
			return cfg, err
		}
		cfg.Authorization = &config.Authorization{Type: "Bearer", Credentials: config.Secret(token)}
	}
	if b := auth.BasicAuth; b != nil {
		pw, err := read(field+".basicAuth.passwordSecret", &b.PasswordSecret)
		if err != nil {
			return cfg, err
		}
		cfg.BasicAuth = &config.BasicAuth{Username: b.Username, Password: config.Secret(pw)}
	}
	if o := auth.OAuth2; o != nil {
		cs, err := read(field+".oauth2.clientSecret", &o.ClientSecret)
		if err != nil {
			return cfg, err
		}
		cfg.OAuth2 = &config.OAuth2{ClientID: o.ClientID, ClientSecret: config.Secret(cs), TokenURL: o.TokenURL, Scopes: o.Scopes, EndpointParams: o.EndpointParams}
	}
	if t := auth.TLS; t != nil {
		cfg.TLSConfig = config.TLSConfig{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
		for _, s := range []struct {
			field string
			ref   *v1alpha1.SecretKeySelector
			dst   func(string)
		}{
			{".tls.caSecret", t.CASecret, func(v string) { cfg.TLSConfig.CA = v }},
			{".tls.certSecret", t.CertSecret, func(v string) { cfg.TLSConfig.Cert = v }},
			{".tls.keySecret", t.KeySecret, func(v string) { cfg.TLSConfig.Key = config.Secret(v) }},
		} {
			if s.ref == nil {
				continue
			}
			v, err := read(field+s.field, s.ref)
			if err != nil {
				return cfg, err
			}
			s.dst(v)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, specErr(field, "%v", err)
	}
	return cfg, nil
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

func parseDuration(d v1alpha1.DurationString) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", d, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", d)
	}
	return v, nil
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

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
