package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/job"
)

func ios(s string) *intstr.IntOrString { return ptr.To(intstr.FromString(s)) }
func ioi(n int32) *intstr.IntOrString  { return ptr.To(intstr.FromInt32(n)) }

func promMetric(name, query string) v1alpha1.Metric {
	return v1alpha1.Metric{Name: name, Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Query: query}}}
}

func argValues(kv ...string) []v1alpha1.Argument {
	var out []v1alpha1.Argument
	for i := 0; i < len(kv); i += 2 {
		out = append(out, v1alpha1.Argument{Name: kv[i], Value: ptr.To(kv[i+1])})
	}
	return out
}

func lines(err error) []string {
	var out []string
	for _, p := range fielderr.From(err) {
		out = append(out, strings.SplitN(p.Error(), "\n", 2)[0])
	}
	return out
}

// TestArgsRenderInEveryField: as in Argo Rollouts, {{args.x}} stands anywhere in a
// metric, numbers and durations included, and is rendered before the metric is checked.
func TestArgsRenderInEveryField(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "http://prometheus:9090", Cluster{})
	m := v1alpha1.Metric{
		Name:                    "{{args.service}}-rate",
		Interval:                "{{args.interval}}",
		InitialDelay:            "{{args.initial-delay}}",
		Count:                   ios("{{args.count}}"),
		FailureLimit:            ios("{{args.failure-limit}}"),
		InconclusiveLimit:       ios(" {{args.inconclusive-limit}} "),
		ConsecutiveErrorLimit:   ios("{{args.error-limit}}"),
		ConsecutiveSuccessLimit: ios("{{args.success-limit}}"),
		SuccessCondition:        "result[0] >= {{args.min}}",
		FailureCondition:        "result[0] < {{ args.max-errors }}",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
			Address: "{{args.prometheus}}",
			Query:   `sum(rate(http_requests_total{service="{{args.service}}"}[{{args.window}}]))`,
			Timeout: ios("{{args.timeout}}"),
			Headers: []v1alpha1.Header{{Key: "X-Scope-OrgID", Value: "{{args.tenant}}"}},
		}},
	}
	spec := &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}, Args: argValues(
		"service", "checkout", "interval", "30s", "initial-delay", "2m", "count", "10", "failure-limit", "2",
		"inconclusive-limit", "1", "error-limit", "3", "success-limit", "4", "min", "0.95", "max-errors", "0.5",
		"prometheus", "http://mimir.monitoring:8080/prometheus", "window", "5m", "timeout", "40",
		"tenant", `team "a"`,
	)}
	plan, err := engine.Prepare(context.Background(), spec, nil, nil)
	require.NoError(t, err)
	pm := plan.Metrics[0]
	assert.Equal(t, "{{args.service}}-rate", pm.Spec.Name, "a metric's name identifies it in status, as written")
	assert.Equal(t, 30*time.Second, pm.Interval)
	assert.Equal(t, 2*time.Minute, pm.InitialDelay)
	assert.Equal(t, []int32{10, 2, 1, 3, 4}, []int32{pm.Count, pm.FailureLimit, pm.InconclusiveLimit, pm.ConsecutiveErrorLimit, pm.ConsecutiveSuccessLimit})
	assert.Equal(t, "result[0] >= 0.95", pm.Success.String())
	assert.Equal(t, "result[0] < 0.5", pm.Failure.String())
	p := pm.Spec.Provider.Prometheus
	assert.Equal(t, "http://mimir.monitoring:8080/prometheus", p.Address)
	assert.Equal(t, `sum(rate(http_requests_total{service="checkout"}[5m]))`, p.Query)
	assert.Equal(t, `team "a"`, p.Headers[0].Value, "a value with quotes stays one string")
	assert.Equal(t, intstr.FromString("40"), *p.Timeout)
	assert.Equal(t, "{{args.count}}", m.Count.StrVal, "the spec itself is left as written")

	t.Run("values are not expanded again", func(t *testing.T) {
		spec := &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{promMetric("m", `up{a="{{args.a}}"}`)}, Args: argValues("a", "{{args.b}}", "b", "x")}
		plan, err := engine.Prepare(context.Background(), spec, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, `up{a="{{args.b}}"}`, plan.Metrics[0].Spec.Provider.Prometheus.Query)
	})
	t.Run("web and job fields", func(t *testing.T) {
		spec := &v1alpha1.AnalysisRunSpec{Args: argValues("host", "checkout.shop", "token", "t0k", "image", "k6:1.0"), Metrics: []v1alpha1.Metric{
			{Name: "page", Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{
				URL: "https://{{args.host}}/health", Method: "POST", Headers: []v1alpha1.Header{{Key: "Authorization", Value: "Bearer {{args.token}}"}},
				JSONBody: &apiextensionsv1.JSON{Raw: []byte(`{"target": "{{args.host}}"}`)},
			}}},
			{Name: "load", Provider: v1alpha1.MetricProvider{Job: &v1alpha1.JobMetric{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "k6", Image: "grafana/{{args.image}}", Args: []string{"run", "--env", "HOST={{args.host}}"}}},
			}}}}}},
		}}
		errs, _ := engine.ValidateTemplate(context.Background(), &v1alpha1.AnalysisTemplateSpec{Metrics: spec.Metrics, Args: spec.Args})
		require.Empty(t, errs)
		var found fielderr.List
		rendered, did := renderer{args: map[string]string{"host": "checkout.shop", "token": "t0k", "image": "k6:1.0"}}.render(field.NewPath("m"), spec.Metrics[1], &found)
		require.Empty(t, did.failed)
		c := rendered.Provider.Job.Spec.Template.Spec.Containers[0]
		assert.Equal(t, "grafana/k6:1.0", c.Image)
		assert.Equal(t, []string{"run", "--env", "HOST=checkout.shop"}, c.Args)
		rendered, did = renderer{args: map[string]string{"host": "checkout.shop", "token": "t0k"}}.render(field.NewPath("m"), spec.Metrics[0], &found)
		require.Empty(t, did.failed)
		assert.Equal(t, "https://checkout.shop/health", rendered.Provider.Web.URL)
		assert.Equal(t, "Bearer t0k", rendered.Provider.Web.Headers[0].Value)
		assert.JSONEq(t, `{"target": "checkout.shop"}`, string(rendered.Provider.Web.JSONBody.Raw))
	})
}

// TestBadArgsNameTheirField: an arg that renders into something a field cannot take is a
// problem at that field, never a default.
func TestBadArgsNameTheirField(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "http://prometheus:9090", Cluster{})
	for _, tc := range []struct {
		name string
		mut  func(*v1alpha1.Metric)
		args []v1alpha1.Argument
		want []string
	}{
		{"a count that is not a number", func(m *v1alpha1.Metric) { m.Count, m.Interval = ios("{{args.count}}"), "1m" }, argValues("count", "five"),
			[]string{`metrics[m].count: "five" is not an integer`}},
		{"a limit below its minimum", func(m *v1alpha1.Metric) { m.FailureLimit = ios("{{args.limit}}") }, argValues("limit", "-3"),
			[]string{"metrics[m].failureLimit: -3 is below the minimum -1"}},
		{"an interval that is not a duration", func(m *v1alpha1.Metric) { m.Interval = "{{args.interval}}" }, argValues("interval", "often"),
			[]string{`metrics[m].interval: invalid duration "often": time: invalid duration "often"`}},
		{"a condition that no longer compiles", func(m *v1alpha1.Metric) { m.SuccessCondition = "result[0] >= {{args.min}}" }, argValues("min", "high"),
			[]string{`metrics[m].successCondition: condition "result[0] >= high": unknown name high (1:14)`}},
		{"an arg nobody gives", func(m *v1alpha1.Metric) { m.Count, m.Interval = ios("{{args.count}}"), "1m" }, nil,
			[]string{`metrics[m].count: argument "count" is not defined`}},
		{"an arg from a Rollout field in a run made by hand", func(*v1alpha1.Metric) {},
			[]v1alpha1.Argument{{Name: "app", ValueFrom: &v1alpha1.ArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: "metadata.labels['app']"}}}},
			[]string{"args[app].valueFrom.fieldRef: a Rollout resolves fieldRef when it creates the run; a run created otherwise gives the value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := promMetric("m", `up{app="{{args.app}}"}`)
			tc.mut(&m)
			args := append(tc.args, argValues("app", "x")...)
			if tc.args != nil && tc.args[0].ValueFrom != nil {
				args = tc.args
			}
			_, err := engine.Prepare(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}, Args: args}, nil, nil)
			require.Error(t, err)
			assert.Equal(t, tc.want, lines(err))
		})
	}
}

// TestTemplatesWithArgsInEveryFieldValidate: a field that is nothing but an arg the
// runs give gets a stand-in of its kind, so `url: '{{args.url}}'` passes as a URL.
func TestTemplatesWithArgsInEveryFieldValidate(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "", Cluster{})
	spec := &v1alpha1.AnalysisTemplateSpec{
		Args: []v1alpha1.Argument{{Name: "url"}, {Name: "address"}, {Name: "base"}, {Name: "count"}, {Name: "interval"}, {Name: "delay"}, {Name: "limit"}, {Name: "min"}, {Name: "service"},
			{Name: "app", ValueFrom: &v1alpha1.ArgumentValueFrom{FieldRef: &v1alpha1.FieldRef{FieldPath: "metadata.labels['app']"}}}},
		Metrics: []v1alpha1.Metric{
			{Name: "web", Interval: "{{args.interval}}", Count: ios("{{args.count}}"), SuccessCondition: "result.ok", Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "{{args.url}}"}}},
			{Name: "prom", InitialDelay: "{{args.delay}}", FailureLimit: ios("{{args.limit}}"), SuccessCondition: "result[0] >= {{args.min}}",
				Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Address: "{{args.address}}", Query: `sum(up{app="{{args.app}}", service="{{args.service}}"})`}}},
			{Name: "tenant", Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{Address: "{{args.base}}/prometheus", Query: "up"}}},
		},
	}
	errs, warnings := engine.ValidateTemplate(context.Background(), spec)
	assert.Empty(t, errs)
	assert.Empty(t, warnings)

	spec.Metrics[0].Provider.Web.URL = "{{args.undeclared}}"
	errs, _ = engine.ValidateTemplate(context.Background(), spec)
	assert.Equal(t, []string{`metrics[web].provider.web.url: argument "undeclared" is not defined`}, lines(errs.Err()))
}

// TestArgoLimits: failureLimit -1 and consecutiveSuccessLimit 0 are Argo Rollouts'
// "disabled", and count reached before consecutiveSuccessLimit decides as Argo does.
func TestArgoLimits(t *testing.T) {
	good, bad := vec(0.99), vec(0.1)
	cases := []struct {
		name    string
		answers []answer
		fl, csl int32
		count   int32
		want    v1alpha1.AnalysisPhase
		message string
	}{
		{"failureLimit -1 ignores failures until consecutive successes", []answer{bad, bad, bad, good, good, good}, -1, 3, 10, v1alpha1.AnalysisPhaseSuccessful, "3 consecutive successes"},
		{"failureLimit -1: count reached without them is Failed", []answer{bad, good, bad, good}, -1, 3, 4, v1alpha1.AnalysisPhaseFailed, "reached count without 3 consecutive successes"},
		{"a failureLimit not exceeded and count reached without them is Inconclusive", []answer{good, bad, good}, 1, 2, 3, v1alpha1.AnalysisPhaseInconclusive, "failureLimit 1 was not exceeded"},
		{"consecutiveSuccessLimit 0 is not used: count decides", []answer{good}, 0, 0, 3, v1alpha1.AnalysisPhaseSuccessful, "3 of 3 measurements"},
		{"failureLimit still fails", []answer{bad, bad}, 1, 2, 5, v1alpha1.AnalysisPhaseFailed, "exceed failureLimit 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Metrics: []*PlannedMetric{planned(t, tc.answers, success("result[0] > 0.9"), every(time.Second, tc.count), func(pm *PlannedMetric) {
				pm.FailureLimit, pm.ConsecutiveSuccessLimit = tc.fl, tc.csl
			})}}
			st := runToEnd(t, p)
			assert.Equal(t, tc.want, st.Phase, st.Message)
			assert.Contains(t, st.Message, tc.message)
		})
	}

	engine := NewEngine(mustExecutor(t), "http://prometheus:9090", Cluster{})
	for _, tc := range []struct {
		name string
		mut  func(*v1alpha1.Metric)
		want string
	}{
		{"both disabled", func(m *v1alpha1.Metric) { m.FailureLimit = ioi(-1) }, "metrics[m].failureLimit: failureLimit -1 needs a consecutiveSuccessLimit: with both disabled nothing could fail the metric"},
		{"count below failureLimit + consecutiveSuccessLimit", func(m *v1alpha1.Metric) { m.FailureLimit, m.ConsecutiveSuccessLimit = ioi(2), ioi(4) }, "metrics[m].consecutiveSuccessLimit: count 5 is below failureLimit + consecutiveSuccessLimit (2 + 4)"},
		{"count below consecutiveSuccessLimit", func(m *v1alpha1.Metric) { m.FailureLimit, m.ConsecutiveSuccessLimit = ioi(-1), ioi(6) }, "metrics[m].consecutiveSuccessLimit: consecutiveSuccessLimit 6 exceeds count 5"},
		{"count below inconclusiveLimit", func(m *v1alpha1.Metric) { m.InconclusiveLimit = ioi(6) }, "metrics[m].inconclusiveLimit: inconclusiveLimit 6 exceeds count 5"},
		{"a failureLimit count cannot exceed", func(m *v1alpha1.Metric) { m.FailureLimit = ioi(5) }, "metrics[m].failureLimit: failureLimit 5 is not below count 5: the metric could never fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := promMetric("m", "up")
			m.Interval, m.Count = "1m", ioi(5)
			tc.mut(&m)
			_, err := engine.Prepare(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}}, nil, nil)
			require.Error(t, err)
			assert.Equal(t, []string{tc.want}, lines(err))
		})
	}
	t.Run("no count: one measurement without an interval, as in Argo", func(t *testing.T) {
		for _, count := range []*intstr.IntOrString{nil, ioi(0)} {
			plan, err := engine.Prepare(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{func() v1alpha1.Metric { m := promMetric("m", "up"); m.Count = count; return m }()}}, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, int32(1), plan.Metrics[0].Count)
		}
	})
}

// TestDryRunAndRetentionSelectors: a metric's name, "*", or a regular expression matched
// against whole names (Argo Rollouts' ".*"); a rule that selects nothing is a problem.
func TestDryRunAndRetentionSelectors(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "http://prometheus:9090", Cluster{})
	metrics := []v1alpha1.Metric{promMetric("error-rate", "up"), promMetric("error-budget", "up"), promMetric("latency-p99", "up"), promMetric("a+b", "up")}
	prepare := func(dry []v1alpha1.DryRun, kept []v1alpha1.MeasurementRetention) (*Plan, error) {
		return engine.Prepare(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: metrics, DryRun: dry, MeasurementRetention: kept}, nil, nil)
	}
	dryOf := func(p *Plan) []string {
		var out []string
		for _, pm := range p.Metrics {
			if pm.DryRun {
				out = append(out, pm.Spec.Name)
			}
		}
		return out
	}
	for pattern, want := range map[string][]string{
		".*":            {"error-rate", "error-budget", "latency-p99", "a+b"},
		"*":             {"error-rate", "error-budget", "latency-p99", "a+b"},
		"error-.*":      {"error-rate", "error-budget"},
		"error-rate":    {"error-rate"},
		"latency|a.b":   {"a+b"},
		"latency-p\\d+": {"latency-p99"},
	} {
		p, err := prepare([]v1alpha1.DryRun{{MetricName: pattern}}, nil)
		require.NoError(t, err, pattern)
		assert.Equal(t, want, dryOf(p), pattern)
	}
	_, err := prepare([]v1alpha1.DryRun{{MetricName: "error"}, {MetricName: "(["}}, []v1alpha1.MeasurementRetention{{MetricName: "nothing.*", Limit: 5}})
	assert.Equal(t, []string{
		`dryRun[0].metricName: no metric named "error" or matching it (use a metric's name, "*" or a regular expression such as ".*")`,
		"dryRun[1].metricName: is neither a metric's name, \"*\" nor a regular expression: error parsing regexp: missing closing ]: `[)$`",
		`measurementRetention[0].metricName: no metric named "nothing.*" or matching it (use a metric's name, "*" or a regular expression such as ".*")`,
	}, lines(err), "matched against whole names: a part of a name selects nothing")

	p, err := prepare(nil, []v1alpha1.MeasurementRetention{{MetricName: ".*", Limit: 20}, {MetricName: "error-rate", Limit: 3}, {MetricName: "error-.*", Limit: 50}})
	require.NoError(t, err)
	var kept []int
	for _, pm := range p.Metrics {
		kept = append(kept, pm.Retention)
	}
	assert.Equal(t, []int{3, 50, 20, 20}, kept, "the exact name wins, then the last rule that matches")
}

// TestDocumentConditions: web values are handed to conditions as JSON decodes them, as in
// Argo Rollouts; numbers keep the shapes they have always had.
func TestDocumentConditions(t *testing.T) {
	doc := func(v any, numbers model.Value) metricsq.Result {
		r, err := metricsq.ShapeDocument(numbers, metricsq.Document{Value: v})
		require.NoError(t, err)
		return r
	}
	object := map[string]any{"ok": true, "successPercent": 0.95, "version": map[string]any{"major": "1"}, "checks": []any{"db", "cache"}}
	cases := []struct {
		src     string
		r       metricsq.Result
		want    bool
		wantErr string
	}{
		{"result == true", doc(true, nil), true, ""},
		{"result", doc(false, nil), false, ""},
		{"result == 'It worked!'", doc("It worked!", nil), true, ""},
		{"result.version.major == '1'", doc(object, nil), true, ""},
		{"result.ok && result.successPercent >= 0.9", doc(object, nil), true, ""},
		{"result.ok && result.successPercent >= 0.99", doc(object, nil), false, ""},
		{"'cache' in result.checks", doc(object, nil), true, ""},
		{"len(result.checks) == 2", doc(object, nil), true, ""},
		{"isNil(result)", doc(nil, nil), true, ""},
		{"isNil(result)", doc(object, nil), false, ""},
		{"isNil(result.missing)", doc(object, nil), true, ""},
		{"default(result.missing, 0.5) == 0.5", doc(object, nil), true, ""},
		{"result >= 0.9", doc(0.97, &model.Scalar{Value: 0.97}), true, ""},
		{"result[0] >= 0.9", doc([]any{0.97}, model.Vector{{Value: 0.97}}), true, ""},
		{"asFloat(result) > 0.5", doc("0.75", &model.Scalar{Value: 0.75}), true, ""},
		{"result == '0.75'", doc("0.75", &model.Scalar{Value: 0.75}), true, ""},
		{"result.ok", doc(0.97, &model.Scalar{Value: 0.97}), false, "cannot fetch ok from float64"},
		{"result > 0.5", doc(true, nil), false, "invalid operation"},
		{"result.rate", doc(map[string]any{"rate": 0.5}, nil), false, "invalid operation: bool(float64)"},
	}
	for _, tc := range cases {
		t.Run(tc.src, func(t *testing.T) {
			c, err := CompileCondition(tc.src)
			require.NoError(t, err)
			got, err := c.Eval(tc.r)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, src := range []string{"result.rate * 100", "-result"} {
		_, err := CompileCondition(src)
		assert.Error(t, err, src)
		_, err = compileFor(src, documentEnv{})
		assert.ErrorContains(t, err, "computes a number, not a bool", "the type checker cannot see it in a document: %s", src)
	}

	t.Run("Prometheus metrics keep typed conditions", func(t *testing.T) {
		engine := NewEngine(mustExecutor(t), "http://prometheus:9090", Cluster{})
		m := promMetric("m", "up")
		m.SuccessCondition = "result.ok"
		_, err := engine.Prepare(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}}, nil, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "metrics[m].successCondition: condition \"result.ok\": ")
		m.Provider = v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "http://status"}}
		_, err = engine.Prepare(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}}, nil, nil)
		assert.NoError(t, err, "a web metric's result may be an object")
	})
}

// verdicts is a provider judging its own measurements, like the job kind: Running until
// its script runs out.
type verdicts struct {
	phases []v1alpha1.AnalysisPhase
	seqs   []int32
}

func (v *verdicts) Measure(_ context.Context, q providers.Query) (providers.Measurement, error) {
	v.seqs = append(v.seqs, q.Seq)
	phase := v.phases[0]
	v.phases = v.phases[1:]
	if phase == v1alpha1.AnalysisPhaseError {
		return providers.Measurement{}, errors.New("the Job could not be created")
	}
	return providers.Measurement{Verdict: &providers.Verdict{Phase: phase, Message: "Job " + string(phase), RetryAfter: 2 * time.Second}}, nil
}

func TestMeasurementsUnderWay(t *testing.T) {
	running, ok, failed := v1alpha1.AnalysisPhaseRunning, v1alpha1.AnalysisPhaseSuccessful, v1alpha1.AnalysisPhaseFailed
	v := &verdicts{phases: []v1alpha1.AnalysisPhase{running, running, ok, v1alpha1.AnalysisPhaseError, running, failed}}
	pm := planned(t, nil, every(10*time.Second, 3), func(pm *PlannedMetric) { pm.Provider, pm.FailureLimit = v, 1 })
	p := &Plan{Metrics: []*PlannedMetric{pm}}
	st := &v1alpha1.AnalysisRunStatus{}

	taken, next := p.Step(context.Background(), st, t0, false)
	assert.Empty(t, taken, "nothing is recorded while the Job runs")
	assert.Equal(t, t0.Add(2*time.Second), next, "asked again after the provider's delay, not at once")
	assert.Empty(t, st.MetricResults[0].Measurements)
	taken, _ = p.Step(context.Background(), st, t0.Add(2*time.Second), false)
	assert.Empty(t, taken)
	taken, next = p.Step(context.Background(), st, t0.Add(4*time.Second), false)
	require.Len(t, taken, 1)
	assert.Equal(t, ok, taken[0].Measurement.Phase)
	assert.Equal(t, "", taken[0].Measurement.Value)
	assert.Equal(t, t0, taken[0].Measurement.StartedAt.Time, "the measurement is the tick's, however long its Job ran")
	assert.Equal(t, t0.Add(10*time.Second), next)

	for _, at := range []time.Duration{10, 20, 22} {
		p.Step(context.Background(), st, t0.Add(at*time.Second), false)
	}
	mr := st.MetricResults[0]
	assert.Equal(t, []int32{0, 0, 0, 1, 2, 2}, v.seqs, "one sequence number per measurement, the Error one included")
	assert.Equal(t, int32(1), mr.Error)
	assert.Equal(t, int32(1), mr.Failed)
	assert.Contains(t, mr.Measurements[len(mr.Measurements)-1].Message, "Job Failed")
}

// TestSelfDecidingMetricsTakeNoConditions: the job and the judge decide their
// measurements themselves, through the one mechanism (Answers() == Verdicts), and a
// condition on either is a problem at the condition's field.
func TestSelfDecidingMetricsTakeNoConditions(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "", Cluster{})
	for _, tc := range []struct {
		kind     string
		provider v1alpha1.MetricProvider
	}{
		{"job", v1alpha1.MetricProvider{Job: &v1alpha1.JobMetric{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "t", Image: "busybox"}}}},
		}}}},
		{"judge", v1alpha1.MetricProvider{Judge: &v1alpha1.JudgeMetric{Lookback: "5m", Step: "15s", Metrics: []v1alpha1.JudgeComparison{
			{Name: "errors", Baseline: `sum(rate(errors_total{rev="a"}[1m]))`, Canary: `sum(rate(errors_total{rev="b"}[1m]))`},
		}}}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			m := v1alpha1.Metric{Name: "smoke", Provider: tc.provider}
			errs, _ := engine.ValidateTemplate(context.Background(), &v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{m}})
			require.Empty(t, errs, "the metric is valid without conditions")
			m.SuccessCondition, m.FailureCondition = "result == true", "result == false"
			errs, _ = engine.ValidateTemplate(context.Background(), &v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{m}})
			assert.Equal(t, []string{
				"metrics[smoke].successCondition: a " + tc.kind + " metric is decided by its provider itself; a condition could only contradict it",
				"metrics[smoke].failureCondition: a " + tc.kind + " metric is decided by its provider itself; a condition could only contradict it",
			}, lines(errs.Err()))
		})
	}
}

// TestShapeWarnings: a condition that reads result as a number on a query that returns a
// vector would make every measurement an Error; a template with one still validates.
func TestShapeWarnings(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "", Cluster{})
	metric := func(name, query, cond string) v1alpha1.Metric {
		m := promMetric(name, query)
		m.SuccessCondition = cond
		return m
	}
	errs, warnings := engine.ValidateTemplate(context.Background(), &v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{
		metric("number-on-vector", "sum(rate(errors_total[5m]))", "result < 0.5"),
		metric("index-on-vector", "sum(rate(errors_total[5m]))", "result[0] < 0.5"),
		metric("list-on-scalar", "scalar(sum(rate(errors_total[5m])))", "result[0] < 0.5"),
		metric("number-on-scalar", "scalar(sum(rate(errors_total[5m])))", "result < 0.5"),
		metric("either", "sum(x)", "default(result, 0) != 1"),
	}})
	assert.Empty(t, errs)
	assert.Equal(t, []string{
		"metrics[number-on-vector].successCondition: uses result as a number but the query returns a vector, a list: every measurement would be Error; read result[0], or wrap the query in scalar()",
		"metrics[list-on-scalar].successCondition: reads result as a list but the query returns a scalar, a number: every measurement would be Error; read result",
	}, lines(warnings.Err()))
}

func TestUnsupportedProvidersSayWhatToUse(t *testing.T) {
	engine := NewEngine(mustExecutor(t), "", Cluster{})
	spec := &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{
		{Name: "cw", Provider: v1alpha1.MetricProvider{CloudWatch: &apiextensionsv1.JSON{Raw: []byte(`{"interval": "5m"}`)}}},
		{Name: "both", Provider: v1alpha1.MetricProvider{Kayenta: &apiextensionsv1.JSON{Raw: []byte(`{}`)}, Prometheus: &v1alpha1.PrometheusMetric{Query: "up"}}},
	}}
	_, err := engine.Prepare(context.Background(), spec, nil, nil)
	assert.Equal(t, []string{
		"metrics[cw].provider.cloudWatch: cloudWatch is an Argo Rollouts provider promgate does not implement; use prometheus with Amazon Managed Service for Prometheus (authentication.sigv4), or export the CloudWatch metrics to a Prometheus-compatible store",
		"metrics[both].provider: exactly one provider (prometheus, web, judge or job) must be set",
	}, lines(err))
}

func TestReleaseDeletesTheJobsOfARun(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, batchv1.AddToScheme(scheme))
	run := providers.Run{Namespace: "shop", Name: "r", UID: "uid-1"}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "r-smoke-0", Labels: map[string]string{job.RunUIDLabel: "uid-1"}}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "other", Labels: map[string]string{job.RunUIDLabel: "uid-2"}}},
	).Build()
	engine := NewEngine(mustExecutor(t), "", Cluster{Client: c})
	jobSpec := &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{{Name: "smoke", Provider: v1alpha1.MetricProvider{Job: &v1alpha1.JobMetric{}}}}}

	require.NoError(t, engine.Release(context.Background(), &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{promMetric("m", "up")}}, run))
	var jobs batchv1.JobList
	require.NoError(t, c.List(context.Background(), &jobs))
	assert.Len(t, jobs.Items, 2, "a run without job metrics leaves Jobs alone")

	require.NoError(t, engine.Release(context.Background(), jobSpec, run))
	require.NoError(t, c.List(context.Background(), &jobs))
	require.Len(t, jobs.Items, 1)
	assert.Equal(t, "other", jobs.Items[0].Name)
}

func TestExpandIncludedTemplates(t *testing.T) {
	templates := map[string]*v1alpha1.AnalysisTemplateSpec{
		"release":   {Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "errors"}, {TemplateName: "latency", ClusterScope: true}}},
		"errors":    {Metrics: []v1alpha1.Metric{promMetric("errors", "up")}, Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "latency", ClusterScope: true}}},
		"c/latency": {Metrics: []v1alpha1.Metric{promMetric("p99", "up")}},
		"loop-a":    {Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "loop-b"}}},
		"loop-b":    {Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "loop-a"}}},
	}
	get := func(path *field.Path, ref v1alpha1.RolloutAnalysisTemplate) (*v1alpha1.AnalysisTemplateSpec, error) {
		key := ref.TemplateName
		if ref.ClusterScope {
			key = "c/" + key
		}
		if s, ok := templates[key]; ok {
			return s, nil
		}
		return nil, field.NotFound(path.Child("templateName"), ref.TemplateName)
	}
	path := field.NewPath("steps").Index(1).Child("analysis", "templates")
	got, err := Expand(path, []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "release"}}, get)
	require.NoError(t, err)
	var names []string
	for _, inc := range got {
		names = append(names, inc.Ref.TemplateName)
		assert.Equal(t, "steps[1].analysis.templates[0]", inc.Path.String())
	}
	assert.Equal(t, []string{"release", "errors", "latency"}, names, "each once, in Argo's order")

	_, err = Expand(path, []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "loop-a"}}, get)
	assert.EqualError(t, err, `steps[1].analysis.templates[0].templateName: Invalid value: "loop-a": templates include each other: AnalysisTemplate loop-a includes AnalysisTemplate loop-b includes AnalysisTemplate loop-a`)
	_, err = Expand(path, []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "errors"}, {TemplateName: "gone"}}, get)
	assert.ErrorContains(t, err, "steps[1].analysis.templates[1].templateName: Not found")
}
