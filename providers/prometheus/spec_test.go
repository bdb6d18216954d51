package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers"
)

var specPath = field.NewPath("metrics").Key("m").Child("provider")

// build builds spec as the engine does and measures it once at tick.
func build(t *testing.T, spec *v1alpha1.PrometheusMetric, env providers.Env) (providers.Source, []string) {
	t.Helper()
	src, errs := newFactory(t, Options{}).Build(context.Background(), specPath, &v1alpha1.MetricProvider{Prometheus: spec}, env)
	var problems []string
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	return src, problems
}

func measureSource(t *testing.T, src providers.Source) (providers.Measurement, error) {
	t.Helper()
	return newExecutor(t).Provider(src).Measure(context.Background(), providers.Query{Tick: tick})
}

// TestTimeoutInBothForms: Argo Rollouts writes seconds (timeout: 40), promgate a duration;
// args render into either.
func TestTimeoutInBothForms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout *intstr.IntOrString
		want    string
		problem string
	}{
		{name: "unset", want: "30s"},
		{name: "Argo's seconds", timeout: ptr.To(intstr.FromInt32(40)), want: "40s"},
		{name: "a duration", timeout: ptr.To(intstr.FromString("1m30s")), want: "1m30s"},
		{name: "seconds from an arg", timeout: ptr.To(intstr.FromString("45")), want: "45s"},
		{name: "negative seconds", timeout: ptr.To(intstr.FromInt32(-5)), problem: "metrics[m].provider.prometheus.timeout: -5 seconds is negative"},
		{name: "not a duration", timeout: ptr.To(intstr.FromString("soon")), problem: `metrics[m].provider.prometheus.timeout: invalid duration "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := &fakeProm{body: vectorBody("1")}
			srv := httptest.NewServer(fp)
			defer srv.Close()
			src, problems := build(t, &v1alpha1.PrometheusMetric{Address: srv.URL, Query: "up", Timeout: tc.timeout}, providers.Env{})
			if tc.problem != "" {
				require.Len(t, problems, 1)
				assert.Contains(t, problems[0], tc.problem)
				return
			}
			require.Empty(t, problems)
			_, err := measureSource(t, src)
			require.NoError(t, err)
			want, _ := time.ParseDuration(tc.want)
			got, err := time.ParseDuration(fp.last(t).form.Get("timeout"))
			require.NoError(t, err)
			assert.Equal(t, want, got, "the timeout goes to Prometheus too")
		})
	}
}

// TestRangeInBothForms: promgate's range (a window ending at the tick) and Argo Rollouts'
// rangeQuery (expr bounds, now() being the tick) ask the same range.
func TestRangeInBothForms(t *testing.T) {
	matrix := `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"0.91"],[2,"0.97"]]}]}}`
	for _, tc := range []struct {
		name      string
		spec      v1alpha1.PrometheusMetric
		wantStart time.Time
		wantEnd   time.Time
		wantStep  string
	}{
		{"promgate's window", v1alpha1.PrometheusMetric{Range: &v1alpha1.PrometheusRange{Window: "10m", Step: "30s"}}, tick.Add(-10 * time.Minute), tick, "30"},
		{"Argo's expressions", v1alpha1.PrometheusMetric{RangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("10m")`, End: "now()", Step: "30s"}}, tick.Add(-10 * time.Minute), tick, "30"},
		{"end defaults to now", v1alpha1.PrometheusMetric{RangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("1h")`}}, tick.Add(-time.Hour), tick, "60"},
		{"a window that ended earlier", v1alpha1.PrometheusMetric{RangeQuery: &v1alpha1.PrometheusRangeQuery{Start: `now() - duration("2h")`, End: `now() - duration("1h")`, Step: "5m"}}, tick.Add(-2 * time.Hour), tick.Add(-time.Hour), "300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := &fakeProm{body: matrix}
			srv := httptest.NewServer(fp)
			defer srv.Close()
			spec := tc.spec
			spec.Address, spec.Query = srv.URL, "sum(rate(http_requests_total[1m]))"
			src, problems := build(t, &spec, providers.Env{})
			require.Empty(t, problems)
			assert.Equal(t, model.ValMatrix, src.Describe().Type)
			m, err := measureSource(t, src)
			require.NoError(t, err)
			assert.Equal(t, []float64{0.97}, m.Result.Values)
			r := fp.last(t)
			assert.Equal(t, "/api/v1/query_range", r.path)
			assert.Equal(t, strconv.FormatInt(tc.wantStart.Unix(), 10), r.form.Get("start"))
			assert.Equal(t, strconv.FormatInt(tc.wantEnd.Unix(), 10), r.form.Get("end"))
			assert.Equal(t, tc.wantStep, r.form.Get("step"))
		})
	}
}

func TestRangeQueryProblemsNameTheirField(t *testing.T) {
	for _, tc := range []struct {
		name string
		rq   v1alpha1.PrometheusRangeQuery
		want string
	}{
		{"malformed start", v1alpha1.PrometheusRangeQuery{Start: `now() - `}, `metrics[m].provider.prometheus.rangeQuery.start: expression "now() - ": unexpected token EOF`},
		{"start that is no time", v1alpha1.PrometheusRangeQuery{Start: `duration("10m")`}, "metrics[m].provider.prometheus.rangeQuery.start: expression \"duration(\\\"10m\\\")\" returns time.Duration, not a time"},
		{"an arg that is no duration", v1alpha1.PrometheusRangeQuery{Start: `now() - duration("ten minutes")`}, `metrics[m].provider.prometheus.rangeQuery.start: evaluating "now() - duration(\"ten minutes\")": time: invalid duration`},
		{"malformed end", v1alpha1.PrometheusRangeQuery{Start: "now()", End: "now(("}, "metrics[m].provider.prometheus.rangeQuery.end: "},
		{"start after end", v1alpha1.PrometheusRangeQuery{Start: "now()", End: `now() - duration("5m")`}, "metrics[m].provider.prometheus.rangeQuery: range start "},
		{"no start", v1alpha1.PrometheusRangeQuery{End: "now()"}, "metrics[m].provider.prometheus.rangeQuery.start: a start such as"},
		{"bad step", v1alpha1.PrometheusRangeQuery{Start: "now()", Step: "often"}, "metrics[m].provider.prometheus.rangeQuery.step: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := build(t, &v1alpha1.PrometheusMetric{Address: "http://p:9090", Query: "up", RangeQuery: &tc.rq}, providers.Env{})
			require.NotEmpty(t, problems)
			assert.Contains(t, problems[0], tc.want)
		})
	}
	_, problems := build(t, &v1alpha1.PrometheusMetric{Address: "http://p:9090", Query: "up",
		Range: &v1alpha1.PrometheusRange{Window: "5m"}, RangeQuery: &v1alpha1.PrometheusRangeQuery{Start: "now()"}}, providers.Env{})
	assert.Equal(t, []string{"metrics[m].provider.prometheus.rangeQuery: range and rangeQuery are mutually exclusive; range is preferred"}, problems)
}

func TestQueryTypeIsDescribed(t *testing.T) {
	for query, want := range map[string]model.ValueType{"sum(rate(x[5m]))": model.ValVector, "scalar(sum(x))": model.ValScalar, "0.95": model.ValScalar} {
		src, problems := build(t, &v1alpha1.PrometheusMetric{Address: "http://p:9090", Query: query}, providers.Env{})
		require.Empty(t, problems)
		assert.Equal(t, want, src.Describe().Type, query)
	}
}

// TestArgoAuthentication: Argo Rollouts writes credentials inline, usually from args,
// where promgate refers to Secrets; both work, and the inline values are masked.
func TestArgoAuthentication(t *testing.T) {
	fp := &fakeProm{body: vectorBody("1")}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	var masked []string
	env := providers.Env{Mask: func(v string) { masked = append(masked, v) }}

	t.Run("basicAuth", func(t *testing.T) {
		src, problems := build(t, &v1alpha1.PrometheusMetric{Address: srv.URL, Query: "up", Authentication: &v1alpha1.Authentication{
			BasicAuth: &v1alpha1.InlineBasicAuth{Username: "grafana-cloud", Password: "glc_token"},
		}}, env)
		require.Empty(t, problems)
		_, err := measureSource(t, src)
		require.NoError(t, err)
		user, pass, ok := (&http.Request{Header: fp.last(t).header}).BasicAuth()
		assert.True(t, ok)
		assert.Equal(t, "grafana-cloud", user)
		assert.Equal(t, "glc_token", pass)
		assert.Contains(t, masked, "glc_token")
	})
	t.Run("oauth2", func(t *testing.T) {
		tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, _ := r.BasicAuth()
			if user != "promgate" || pass != "client-secret" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"argo-token","token_type":"Bearer","expires_in":3600}`)
		}))
		defer tokens.Close()
		src, problems := build(t, &v1alpha1.PrometheusMetric{Address: srv.URL, Query: "up", Authentication: &v1alpha1.Authentication{
			OAuth2: &v1alpha1.InlineOAuth2{TokenURL: tokens.URL, ClientID: "promgate", ClientSecret: "client-secret", Scopes: []string{"read"}},
		}}, env)
		require.Empty(t, problems)
		_, err := measureSource(t, src)
		require.NoError(t, err)
		assert.Equal(t, "Bearer argo-token", fp.last(t).header.Get("Authorization"))
		assert.Contains(t, masked, "client-secret")
	})
	t.Run("sigv4", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
		t.Setenv("AWS_CONFIG_FILE", dir+"/config")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		spec := &v1alpha1.PrometheusMetric{Address: srv.URL, Query: "up", Authentication: &v1alpha1.Authentication{SigV4: &v1alpha1.SigV4{Region: "us-east-1"}}}
		src, problems := build(t, spec, env)
		require.Empty(t, problems)
		_, err := measureSource(t, src)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(fp.last(t).header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "signed for Amazon Managed Service for Prometheus")

		// A template is checked without the controller's credentials, and asks nothing.
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		_, problems = build(t, spec, providers.Env{Template: true})
		assert.Empty(t, problems)
	})
	t.Run("credentials in both forms", func(t *testing.T) {
		_, problems := build(t, &v1alpha1.PrometheusMetric{Address: srv.URL, Query: "up",
			Auth:           &v1alpha1.HTTPAuth{BearerTokenSecret: &v1alpha1.SecretKeySelector{Name: "s", Key: "k"}},
			Authentication: &v1alpha1.Authentication{BasicAuth: &v1alpha1.InlineBasicAuth{Username: "u", Password: "p"}},
		}, providers.Env{Template: true})
		assert.Contains(t, problems, "metrics[m].provider.prometheus.authentication: credentials are set in auth too; keep one (auth, with Secrets, is preferred)")
	})
}

// TestInsecureInBothForms: Argo Rollouts' insecure and promgate's
// auth.tls.insecureSkipVerify both accept a certificate no CA vouches for.
func TestInsecureInBothForms(t *testing.T) {
	srv := httptest.NewTLSServer(&fakeProm{body: vectorBody("1")})
	defer srv.Close()
	for name, spec := range map[string]v1alpha1.PrometheusMetric{
		"Argo's insecure":               {Insecure: true},
		"promgate's insecureSkipVerify": {Auth: &v1alpha1.HTTPAuth{TLS: &v1alpha1.TLSConfig{InsecureSkipVerify: true}}},
	} {
		spec.Address, spec.Query = srv.URL, "up"
		src, problems := build(t, &spec, providers.Env{})
		require.Empty(t, problems, name)
		_, err := measureSource(t, src)
		assert.NoError(t, err, name)
	}
	src, problems := build(t, &v1alpha1.PrometheusMetric{Address: srv.URL, Query: "up"}, providers.Env{})
	require.Empty(t, problems)
	_, err := measureSource(t, src)
	assert.ErrorContains(t, err, "certificate", "without either, the certificate is checked")
}

func TestAddressProblems(t *testing.T) {
	_, problems := build(t, &v1alpha1.PrometheusMetric{Address: "prometheus:9090", Query: "up"}, providers.Env{})
	assert.Equal(t, []string{`metrics[m].provider.prometheus.address: address "prometheus:9090" is not an http(s) URL`}, problems)
	_, problems = build(t, &v1alpha1.PrometheusMetric{Query: "up"}, providers.Env{Template: true})
	assert.Empty(t, problems, "a template may leave the address to the controller")
}
