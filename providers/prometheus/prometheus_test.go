package prometheus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/shared"
)

var tick = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeProm speaks enough of the Prometheus HTTP API for the client: /api/v1/query and
// /api/v1/query_range, answering with body and recording each request.
type fakeProm struct {
	body  string // the JSON answer
	delay time.Duration

	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	path   string
	header http.Header
	form   url.Values
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" && r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{path: r.URL.Path, header: r.Header.Clone(), form: r.Form})
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if f.body == "" {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		return
	}
	fmt.Fprint(w, f.body)
}

func (f *fakeProm) last(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.requests)
	return f.requests[len(f.requests)-1]
}

func (f *fakeProm) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func vectorBody(values ...string) string {
	var result []map[string]any
	for i, v := range values {
		result = append(result, map[string]any{
			"metric": map[string]string{"pod": "p" + strconv.Itoa(i)},
			"value":  []any{tick.Unix(), v},
		})
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	return string(b)
}

func newFactory(t *testing.T, opts Options) *Factory {
	t.Helper()
	return NewFactory(opts)
}

func newExecutor(t *testing.T) *shared.Executor {
	t.Helper()
	exec, err := shared.NewExecutor(nil, shared.Options{})
	require.NoError(t, err)
	return exec
}

// measure takes one measurement of cfg at tick, as the engine does: through an executor.
func measure(t *testing.T, f *Factory, cfg Config) (providers.Measurement, error) {
	t.Helper()
	src, err := f.New(cfg)
	require.NoError(t, err)
	return newExecutor(t).Provider(src).Measure(context.Background(), providers.Query{Tick: tick})
}

func TestInstantQuery(t *testing.T) {
	fp := &fakeProm{body: vectorBody("0.93", "0.95")}
	srv := httptest.NewServer(fp)
	defer srv.Close()

	m, err := measure(t, newFactory(t, Options{}), Config{Address: srv.URL, Query: `up`})
	require.NoError(t, err)
	assert.Equal(t, []float64{0.93, 0.95}, m.Result.Values)
	assert.Equal(t, map[string]string{"pod": "p1"}, m.Result.Series[1].Labels)
	assert.False(t, m.Result.NoData)
	assert.Equal(t, "[0.93, 0.95]", m.Result.String())

	r := fp.last(t)
	assert.Equal(t, "/api/v1/query", r.path)
	assert.Equal(t, "up", r.form.Get("query"))
	assert.Equal(t, strconv.FormatInt(tick.Unix(), 10), r.form.Get("time"), "evaluated at the tick, not at now")
	assert.Equal(t, "30s", r.form.Get("timeout"), "default timeout, sent to the server too")
}

func TestRangeQuery(t *testing.T) {
	fp := &fakeProm{body: `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"pod":"a"},"values":[[1,"1"],[2,"3"]]},
		{"metric":{"pod":"b"},"values":[[1,"5"],[2,"4"]]}]}}`}
	srv := httptest.NewServer(fp)
	defer srv.Close()

	m, err := measure(t, newFactory(t, Options{}), Config{Address: srv.URL, Query: `rate(x[1m])`, Range: &Range{Window: 5 * time.Minute, Step: 30 * time.Second}})
	require.NoError(t, err)
	assert.Equal(t, []float64{3, 4}, m.Result.Values)
	assert.Equal(t, []float64{1, 3}, m.Result.Series[0].Values)

	r := fp.last(t)
	assert.Equal(t, "/api/v1/query_range", r.path)
	assert.Equal(t, strconv.FormatInt(tick.Add(-5*time.Minute).Unix(), 10), r.form.Get("start"))
	assert.Equal(t, strconv.FormatInt(tick.Unix(), 10), r.form.Get("end"))
	assert.Equal(t, "30", r.form.Get("step"))
}

func TestNoData(t *testing.T) {
	tests := map[string]string{
		"empty vector": vectorBody(),
		"NaN":          vectorBody("NaN"),
		"Inf and NaN":  vectorBody("+Inf", "NaN"),
		"NaN scalar":   `{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}`,
		"empty matrix": `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeProm{body: body})
			defer srv.Close()
			m, err := measure(t, newFactory(t, Options{}), Config{Address: srv.URL, Query: `up`})
			require.NoError(t, err, "no data is not an error: the noData policy decides")
			assert.True(t, m.Result.NoData)
		})
	}
}

func TestWarningsAndInfosKept(t *testing.T) {
	srv := httptest.NewServer(&fakeProm{body: `{"status":"success","warnings":["PromQL warning: x"],"infos":["PromQL info: y"],
		"data":{"resultType":"scalar","result":[1,"0.5"]}}`})
	defer srv.Close()
	m, err := measure(t, newFactory(t, Options{}), Config{Address: srv.URL, Query: `scalar(up)`})
	require.NoError(t, err)
	assert.Equal(t, []string{"PromQL warning: x"}, m.Warnings)
	assert.Equal(t, []string{"PromQL info: y"}, m.Infos)
	assert.Equal(t, "0.5", m.Result.String())
}

func TestHeadersAndAuth(t *testing.T) {
	basic := config.DefaultHTTPClientConfig
	basic.BasicAuth = &config.BasicAuth{Username: "admin", Password: "s3cret"}
	bearer := config.DefaultHTTPClientConfig
	bearer.Authorization = &config.Authorization{Type: "Bearer", Credentials: "tok"}
	tests := []struct {
		name     string
		http     config.HTTPClientConfig
		wantAuth string
	}{
		{name: "bearer", http: bearer, wantAuth: "Bearer tok"},
		{name: "basic", http: basic, wantAuth: "Basic YWRtaW46czNjcmV0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProm{}
			srv := httptest.NewServer(fp)
			defer srv.Close()
			_, err := measure(t, newFactory(t, Options{}), Config{
				Address: srv.URL, Query: `up`, HTTP: tt.http,
				Headers: map[string]string{"X-Scope-OrgID": "tenant-1"},
			})
			require.NoError(t, err)
			h := fp.last(t).header
			assert.Equal(t, tt.wantAuth, h.Get("Authorization"))
			assert.Equal(t, "tenant-1", h.Get("X-Scope-OrgID"))
		})
	}
}

func TestOAuth2(t *testing.T) {
	var tokenCalls atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		user, pass, _ := r.BasicAuth()
		if r.FormValue("grant_type") != "client_credentials" || user != "promgate" || pass != "client-secret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"issued-token","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	fp := &fakeProm{body: vectorBody("1")}
	srv := httptest.NewServer(fp)
	defer srv.Close()

	cfg := Config{Address: srv.URL, Query: `up`, HTTP: config.DefaultHTTPClientConfig}
	cfg.HTTP.OAuth2 = &config.OAuth2{ClientID: "promgate", ClientSecret: "client-secret", TokenURL: tokens.URL, Scopes: []string{"read"}}
	f := newFactory(t, Options{})
	exec := newExecutor(t)
	for i := range 3 {
		src, err := f.New(cfg)
		require.NoError(t, err)
		_, err = exec.Provider(src).Measure(context.Background(), providers.Query{Tick: tick.Add(time.Duration(i) * time.Minute)})
		require.NoError(t, err)
		assert.Equal(t, "Bearer issued-token", fp.last(t).header.Get("Authorization"))
	}
	assert.Equal(t, int32(1), tokenCalls.Load(), "the cached client keeps its token")
}

func TestTLS(t *testing.T) {
	ca := newCA(t)
	serverCert := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	clientCert := ca.issue(t, "promgate", x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)

	fp := &fakeProm{body: vectorBody("1")}
	srv := httptest.NewUnstartedServer(fp)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{serverCert.pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	srv.StartTLS()
	defer srv.Close()

	f := newFactory(t, Options{})
	withTLS := func(tc config.TLSConfig) Config {
		cfg := Config{Address: srv.URL, Query: `up`, HTTP: config.DefaultHTTPClientConfig}
		cfg.HTTP.TLSConfig = tc
		return cfg
	}

	m, err := measure(t, f, withTLS(config.TLSConfig{CA: ca.pem, Cert: clientCert.certPEM, Key: config.Secret(clientCert.keyPEM)}))
	require.NoError(t, err)
	assert.Equal(t, []float64{1}, m.Result.Values)

	_, err = measure(t, f, withTLS(config.TLSConfig{Cert: clientCert.certPEM, Key: config.Secret(clientCert.keyPEM)}))
	require.ErrorContains(t, err, "certificate", "an unknown CA is refused")

	_, err = measure(t, f, withTLS(config.TLSConfig{CA: ca.pem}))
	require.Error(t, err, "the server requires a client certificate")
	assert.Equal(t, 1, fp.count())
}

func TestTimeout(t *testing.T) {
	fp := &fakeProm{delay: 5 * time.Second}
	srv := httptest.NewServer(fp)
	defer srv.Close()

	start := time.Now()
	_, err := measure(t, newFactory(t, Options{}), Config{Address: srv.URL, Query: `up`, Timeout: 100 * time.Millisecond})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "querying "+srv.URL+": timed out after 100ms")
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, "100ms", fp.last(t).form.Get("timeout"))
}

func TestPrometheusError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error at char 4"}`)
	}))
	defer srv.Close()
	_, err := measure(t, newFactory(t, Options{}), Config{Address: srv.URL, Query: `up(`})
	require.ErrorContains(t, err, "querying "+srv.URL+": bad_data: parse error at char 4")
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	_, err = measure(t, newFactory(t, Options{}), Config{Address: addr, Query: `up`})
	require.ErrorContains(t, err, "querying "+addr)
}

func TestClientReuse(t *testing.T) {
	f := newFactory(t, Options{DefaultAddress: "http://prometheus.monitoring:9090"})
	cfg := Config{Query: `up`, HTTP: config.DefaultHTTPClientConfig, Headers: map[string]string{"X-Scope-OrgID": "a"}}
	cfg.HTTP.Authorization = &config.Authorization{Credentials: "one"}

	p1, err := f.New(cfg)
	require.NoError(t, err)
	p2, err := f.New(cfg)
	require.NoError(t, err)
	assert.Equal(t, 1, f.clients.Len(), "same configuration, same client")
	assert.Equal(t, p1.desc, p2.desc)
	assert.Equal(t, "http://prometheus.monitoring:9090", p1.desc.Shown, "default address")

	cfg2 := cfg
	cfg2.Query = `down`
	cfg2.Address = "http://other:9090"
	p3, err := f.New(cfg2)
	require.NoError(t, err)
	assert.Equal(t, 1, f.clients.Len(), "the query and address do not need a new client")
	assert.NotEqual(t, p1.desc.Target, p3.desc.Target, "but another address is another target")

	rotated := cfg
	rotated.HTTP.Authorization = &config.Authorization{Credentials: "two"}
	p4, err := f.New(rotated)
	require.NoError(t, err)
	assert.Equal(t, 2, f.clients.Len(), "a rotated secret gets a new client")
	assert.NotEqual(t, p1.desc.Target, p4.desc.Target)

	tenant := cfg
	tenant.Headers = map[string]string{"X-Scope-OrgID": "b"}
	p5, err := f.New(tenant)
	require.NoError(t, err)
	assert.NotEqual(t, p1.desc.Target, p5.desc.Target, "another tenant is another target")

	ranged := cfg
	ranged.Range = &Range{Window: time.Minute, Step: time.Second}
	p6, err := f.New(ranged)
	require.NoError(t, err)
	assert.Equal(t, p1.desc.Target, p6.desc.Target)
	assert.NotEqual(t, p1.desc.Query, p6.desc.Query, "a range query is another question than the instant one")
}

func TestSharedExecutorDeduplicates(t *testing.T) {
	fp := &fakeProm{body: vectorBody("1"), delay: 50 * time.Millisecond}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	f := newFactory(t, Options{})
	exec := newExecutor(t)

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			src, err := f.New(Config{Address: srv.URL, Query: `up`})
			if !assert.NoError(t, err) {
				return
			}
			m, err := exec.Provider(src).Measure(context.Background(), providers.Query{Tick: tick})
			assert.NoError(t, err)
			assert.Equal(t, "[1]", m.Result.String())
		})
	}
	wg.Wait()
	assert.Equal(t, 1, fp.count(), "50 runs at one tick, one query")
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFactory(t, Options{})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "no address", cfg: Config{Query: "up"}, wantErr: "no address configured"},
		{name: "not a URL", cfg: Config{Address: "prometheus:9090", Query: "up"}, wantErr: "is not an http(s) URL"},
		{name: "no query", cfg: Config{Address: "http://p:9090"}, wantErr: "query is empty"},
		{name: "bad range", cfg: Config{Address: "http://p:9090", Query: "up", Range: &Range{Window: time.Minute}}, wantErr: "positive window or a start, and a positive step"},
		{name: "bad TLS", cfg: Config{Address: "https://p:9090", Query: "up", HTTP: config.HTTPClientConfig{TLSConfig: config.TLSConfig{CA: "not a PEM"}}}, wantErr: "prometheus provider for https://p:9090"},
		{name: "reserved header", cfg: Config{Address: "http://p:9090", Query: "up", Headers: map[string]string{"Authorization": "x"}}, wantErr: "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.New(tt.cfg)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

type issued struct {
	pair            tls.Certificate
	certPEM, keyPEM string
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "promgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return issued{pair: pair, certPEM: string(certPEM), keyPEM: string(keyPEM)}
}
