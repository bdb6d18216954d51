package web

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/providers"
	"github.com/promgate/promgate/providers/shared"
)

var tick = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newFactory(t *testing.T, opts Options) *Factory {
	t.Helper()
	return NewFactory(opts)
}

// measure takes one measurement of src at tick, as the engine does: through an executor.
func measure(t *testing.T, exec *shared.Executor, src *Source) (providers.Measurement, error) {
	t.Helper()
	if exec == nil {
		var err error
		exec, err = shared.NewExecutor(nil, shared.Options{})
		require.NoError(t, err)
	}
	return exec.Provider(src).Measure(context.Background(), providers.Query{Tick: tick})
}

func serveJSON(body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
}

func TestPick(t *testing.T) {
	const doc = `{
		"data": {"ok": 0.99, "text": "0.5", "word": "fine", "flag": true, "nothing": null,
		         "list": [0.9, "0.8", null], "nested": [[1]], "obj": {"a": 1}, "empty": [], "mixed": [1, "x"]},
		"items": [{"v": 1}, {"v": 2}, {"w": 3}]
	}`
	nan := math.NaN()
	tests := []struct {
		path       string
		wantType   model.ValueType
		wantValues []float64
		wantNoData bool
		wantDoc    any
		wantErr    string
	}{
		{path: "{$.data.ok}", wantType: model.ValScalar, wantValues: []float64{0.99}, wantDoc: 0.99},
		{path: "$.data.ok", wantType: model.ValScalar, wantValues: []float64{0.99}, wantDoc: 0.99},
		{path: "{.data.text}", wantType: model.ValScalar, wantValues: []float64{0.5}, wantDoc: "0.5"},
		{path: "{$.data.list}", wantType: model.ValVector, wantValues: []float64{0.9, 0.8, nan}, wantDoc: []any{0.9, "0.8", nil}},
		{path: "{$.items[*].v}", wantType: model.ValVector, wantValues: []float64{1, 2}, wantDoc: []any{1.0, 2.0}},
		{path: "{$.data.nothing}", wantType: model.ValNone, wantNoData: true},
		{path: "{$.data.missing}", wantType: model.ValNone, wantNoData: true},
		{path: "{$.data.empty}", wantType: model.ValVector, wantValues: []float64{}, wantNoData: true, wantDoc: []any{}},
		{path: "{$.data.word}", wantType: model.ValNone, wantDoc: "fine"},
		{path: "{$.data.flag}", wantType: model.ValNone, wantDoc: true},
		{path: "{$.data.obj}", wantType: model.ValNone, wantDoc: map[string]any{"a": 1.0}},
		{path: "{$.data.nested}", wantType: model.ValNone, wantDoc: []any{[]any{1.0}}},
		{path: "{$.data.mixed}", wantType: model.ValNone, wantDoc: []any{1.0, "x"}},
		{path: "{$.data.ok[0]}", wantErr: "jsonPath {$.data.ok[0]}"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			srv := serveJSON(doc)
			defer srv.Close()
			p, err := newFactory(t, Options{}).New(Config{URL: srv.URL, JSONPath: tt.path})
			require.NoError(t, err)
			m, err := measure(t, nil, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.ErrorContains(t, err, "querying GET "+srv.URL)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, m.Result.Type)
			assert.Equal(t, tt.wantNoData, m.Result.NoData)
			require.NotNil(t, m.Result.Document, "the value as JSON decodes it is always there")
			assert.Equal(t, tt.wantDoc, m.Result.Document.Value)
			require.Len(t, m.Result.Values, len(tt.wantValues))
			for i, w := range tt.wantValues {
				if math.IsNaN(w) {
					assert.True(t, math.IsNaN(m.Result.Values[i]))
				} else {
					assert.Equal(t, w, m.Result.Values[i])
				}
			}
		})
	}
}

func TestWholeDocument(t *testing.T) {
	for body, want := range map[string]string{`0.75`: "0.75", `[1, 2]`: "[1, 2]", `null`: "null", `{"ok": true}`: `{"ok":true}`, `"It worked!"`: `"It worked!"`} {
		srv := serveJSON(body)
		p, err := newFactory(t, Options{}).New(Config{URL: srv.URL})
		require.NoError(t, err)
		m, err := measure(t, nil, p)
		require.NoError(t, err, body)
		assert.Equal(t, want, m.Result.String(), body)
		srv.Close()
	}
}

func TestGetAndPost(t *testing.T) {
	type seen struct {
		method, body, contentType, auth, custom, query string
	}
	var mu sync.Mutex
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = seen{r.Method, string(b), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("X-Custom"), r.URL.RawQuery}
		mu.Unlock()
		fmt.Fprint(w, `{"rate": 0.97}`)
	}))
	defer srv.Close()
	f := newFactory(t, Options{})

	bearer := config.DefaultHTTPClientConfig
	bearer.Authorization = &config.Authorization{Credentials: "tok"}
	p, err := f.New(Config{URL: srv.URL + "/q?svc=a", JSONPath: "{$.rate}", HTTP: bearer, Headers: map[string]string{"X-Custom": "1"}})
	require.NoError(t, err)
	m, err := measure(t, nil, p)
	require.NoError(t, err)
	assert.Equal(t, "0.97", m.Result.String())
	assert.Equal(t, seen{method: "GET", auth: "Bearer tok", custom: "1", query: "svc=a"}, got)

	p, err = f.New(Config{
		URL: srv.URL, Method: "post", Body: `{"query":"x"}`, JSONPath: "{$.rate}",
		Headers: map[string]string{"Authorization": "Bearer from-header"},
	})
	require.NoError(t, err)
	_, err = measure(t, nil, p)
	require.NoError(t, err)
	assert.Equal(t, seen{method: "POST", body: `{"query":"x"}`, contentType: "application/json", auth: "Bearer from-header"}, got)
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    Options
		timeout time.Duration
		wantErr string
	}{
		{
			name: "status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "backend down", http.StatusServiceUnavailable)
			},
			wantErr: "status 503: backend down",
		},
		{
			name:    "not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") },
			wantErr: "decoding JSON",
		},
		{
			name:    "too large",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("1", 100)) },
			opts:    Options{MaxResponseBytes: 10},
			wantErr: "response larger than 10 bytes",
		},
		{
			name: "timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			timeout: 50 * time.Millisecond,
			wantErr: "timed out after 50ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			p, err := newFactory(t, tt.opts).New(Config{URL: srv.URL + "/path?secret=1", Timeout: tt.timeout})
			require.NoError(t, err)
			_, err = measure(t, nil, p)
			require.ErrorContains(t, err, tt.wantErr)
			assert.ErrorContains(t, err, "querying GET "+srv.URL+"/path: ")
			assert.NotContains(t, err.Error(), "secret=1", "query strings may carry API keys")
		})
	}
}

func TestClientReuseAndDeduplication(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(20 * time.Millisecond)
		fmt.Fprint(w, `{"a": 1, "b": 2}`)
	}))
	defer srv.Close()
	f := newFactory(t, Options{})

	pa, err := f.New(Config{URL: srv.URL, JSONPath: "{$.a}"})
	require.NoError(t, err)
	pb, err := f.New(Config{URL: srv.URL + "/other", JSONPath: "{$.b}"})
	require.NoError(t, err)
	assert.Same(t, pa.client, pb.client, "same auth, same client")
	assert.Equal(t, pa.desc.Target, pb.desc.Target, "same host and identity, same concurrency bound")
	assert.NotEqual(t, pa.desc.Query, pb.desc.Query)

	exec, err := shared.NewExecutor(nil, shared.Options{})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			m, err := measure(t, exec, pa)
			assert.NoError(t, err)
			assert.Equal(t, "1", m.Result.String())
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), hits.Load())
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFactory(t, Options{})
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{cfg: Config{URL: "example.com/x"}, wantErr: "is not an http(s) URL"},
		{cfg: Config{URL: "http://example.com", Method: "DELETE"}, wantErr: `method "DELETE" is not GET, POST or PUT`},
		{cfg: Config{URL: "http://example.com", JSONPath: "{$.a"}, wantErr: `jsonPath "{$.a"`},
		{cfg: Config{URL: "http://example.com", HTTP: config.HTTPClientConfig{BearerToken: "a", BearerTokenFile: "b"}}, wantErr: "invalid HTTP client configuration"},
	}
	for _, tt := range tests {
		_, err := f.New(tt.cfg)
		assert.ErrorContains(t, err, tt.wantErr)
	}
}
