package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers"
)

var specPath = field.NewPath("metrics").Key("m").Child("provider")

func build(t *testing.T, spec *v1alpha1.WebMetric, env providers.Env) (*Source, []string) {
	t.Helper()
	src, errs := newFactory(t, Options{}).Build(context.Background(), specPath, &v1alpha1.MetricProvider{Web: spec}, env)
	var problems []string
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	if src == nil {
		return nil, problems
	}
	return src.(*Source), problems
}

// recorder answers body and keeps the last request.
type recorder struct {
	mu                         sync.Mutex
	method, body, contentType  string
	user, password, authHeader string
}

func (r *recorder) serve(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.method, r.body, r.contentType, r.authHeader = req.Method, string(b), req.Header.Get("Content-Type"), req.Header.Get("Authorization")
		r.user, r.password, _ = req.BasicAuth()
		r.mu.Unlock()
		io.WriteString(w, body)
	}
}

// TestArgoWebShapes: PUT, jsonBody, timeoutSeconds, insecure and authentication as Argo
// Rollouts writes them, beside promgate's own fields.
func TestArgoWebShapes(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewTLSServer(rec.serve(`{"ok": true}`))
	defer srv.Close()

	s, problems := build(t, &v1alpha1.WebMetric{
		URL: srv.URL + "/smoke", Method: "PUT", Insecure: true, TimeoutSeconds: 20,
		JSONBody:       &apiextensionsv1.JSON{Raw: []byte(`{"service": "checkout", "checks": ["health", "login"]}`)},
		Authentication: &v1alpha1.Authentication{BasicAuth: &v1alpha1.InlineBasicAuth{Username: "ci", Password: "s3cret"}},
	}, providers.Env{})
	require.Empty(t, problems)
	assert.Equal(t, 20*time.Second, s.timeout, "Argo's timeoutSeconds")
	m, err := measure(t, nil, s)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"ok": true}, m.Result.Document.Value)
	assert.Equal(t, "PUT", rec.method)
	assert.Equal(t, `{"service":"checkout","checks":["health","login"]}`, rec.body, "jsonBody is sent as compact JSON")
	assert.Equal(t, "application/json", rec.contentType)
	assert.Equal(t, []string{"ci", "s3cret"}, []string{rec.user, rec.password})

	s, problems = build(t, &v1alpha1.WebMetric{URL: srv.URL, Timeout: "5s", Auth: &v1alpha1.HTTPAuth{TLS: &v1alpha1.TLSConfig{InsecureSkipVerify: true}}}, providers.Env{})
	require.Empty(t, problems)
	assert.Equal(t, 5*time.Second, s.timeout, "promgate's timeout")
	_, err = measure(t, nil, s)
	require.NoError(t, err)
	assert.Equal(t, "GET", rec.method, "GET by default")
	assert.Equal(t, "{$}", s.path, "the whole document by default, as in Argo Rollouts")
}

func TestWebSpecProblemsNameTheirField(t *testing.T) {
	body := &apiextensionsv1.JSON{Raw: []byte(`{"a": 1}`)}
	for _, tc := range []struct {
		name string
		spec v1alpha1.WebMetric
		want string
	}{
		{"a body with GET", v1alpha1.WebMetric{URL: "http://x", Body: "{}"}, "metrics[m].provider.web.body: a body is sent only with method POST or PUT"},
		{"a jsonBody with GET", v1alpha1.WebMetric{URL: "http://x", Method: "GET", JSONBody: body}, "metrics[m].provider.web.jsonBody: a body is sent only with method POST or PUT"},
		{"both bodies", v1alpha1.WebMetric{URL: "http://x", Method: "POST", Body: "{}", JSONBody: body}, "metrics[m].provider.web.jsonBody: body and jsonBody are mutually exclusive"},
		{"both timeouts", v1alpha1.WebMetric{URL: "http://x", Timeout: "5s", TimeoutSeconds: 5}, "metrics[m].provider.web.timeoutSeconds: timeout and timeoutSeconds are mutually exclusive; timeout is preferred"},
		{"negative seconds", v1alpha1.WebMetric{URL: "http://x", TimeoutSeconds: -1}, "metrics[m].provider.web.timeoutSeconds: -1 is not a number of seconds a timeout can be"},
		{"an unknown method", v1alpha1.WebMetric{URL: "http://x", Method: "DELETE"}, `metrics[m].provider.web.method: "DELETE" is not GET, POST or PUT`},
		{"sigv4", v1alpha1.WebMetric{URL: "http://x", Authentication: &v1alpha1.Authentication{SigV4: &v1alpha1.SigV4{Region: "us-east-1"}}}, "metrics[m].provider.web.authentication.sigv4: sigv4 signs requests to Amazon Managed Service for Prometheus: use it with the prometheus provider"},
		{"a URL that is no URL", v1alpha1.WebMetric{URL: "checkout/health"}, `metrics[m].provider.web.url: URL "checkout/health" is not an http(s) URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := build(t, &tc.spec, providers.Env{})
			assert.Contains(t, problems, tc.want)
		})
	}
}

func TestWebOAuth2Inline(t *testing.T) {
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "promgate" || p != "from-an-arg" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"t0k","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	rec := &recorder{}
	srv := httptest.NewServer(rec.serve(`0.99`))
	defer srv.Close()
	var masked []string
	s, problems := build(t, &v1alpha1.WebMetric{URL: srv.URL, Authentication: &v1alpha1.Authentication{
		OAuth2: &v1alpha1.InlineOAuth2{TokenURL: tokens.URL, ClientID: "promgate", ClientSecret: "from-an-arg"},
	}}, providers.Env{Mask: func(v string) { masked = append(masked, v) }})
	require.Empty(t, problems)
	m, err := measure(t, nil, s)
	require.NoError(t, err)
	assert.Equal(t, []float64{0.99}, m.Result.Values, "a number is still a number")
	assert.Equal(t, "Bearer t0k", rec.authHeader)
	assert.Equal(t, []string{"from-an-arg"}, masked)
}

func TestCheckWeb(t *testing.T) {
	f := newFactory(t, Options{})
	errs := f.Check(specPath, &v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{
		JSONBody:       &apiextensionsv1.JSON{Raw: []byte(`[1]`)},
		Authentication: &v1alpha1.Authentication{OAuth2: &v1alpha1.InlineOAuth2{}, BasicAuth: &v1alpha1.InlineBasicAuth{}},
	}})
	var got []string
	for _, e := range errs {
		got = append(got, e.Field+": "+e.Detail)
	}
	assert.Equal(t, []string{
		"metrics[m].provider.web.url: a URL is required",
		"metrics[m].provider.web.jsonBody: must be an object; send other JSON as body",
		"metrics[m].provider.web.authentication.oauth2.tokenUrl: is required",
		"metrics[m].provider.web.authentication.oauth2.clientId: is required",
		"metrics[m].provider.web.authentication.oauth2.clientSecret: is required",
		"metrics[m].provider.web.authentication.basicAuth.username: is required",
		"metrics[m].provider.web.authentication: at most one of sigv4, oauth2 and basicAuth",
	}, got)
	assert.False(t, strings.Contains(strings.Join(got, "\n"), "unknown field"))
}
