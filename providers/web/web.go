// Package web measures metrics from any HTTP endpoint returning JSON, picking the value
// with a Kubernetes JSONPath expression (as Argo Rollouts' web provider does).
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/util/jsonpath"

	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
)

// ProviderName labels this provider's queries in the executor's metrics.
const ProviderName = "web"

// DefaultMaxResponseBytes bounds a response body when Options leaves it unset: a metric
// is a number, and a runaway endpoint must not exhaust the controller's memory.
const DefaultMaxResponseBytes = 10 << 20

// Config is one metric's web request, with secrets already resolved.
type Config struct {
	// URL is the endpoint, rendered from the template's args.
	URL string
	// Method is GET (the default) or POST.
	Method string
	// Body is sent with the request, as application/json unless Headers says otherwise.
	Body string
	// Headers are set on the request as given. Unlike the prometheus provider any header
	// is allowed, Authorization included, since Argo Rollouts web metrics put tokens here.
	Headers map[string]string
	// JSONPath picks the value, e.g. "{$.data.successRate}"; braces may be omitted.
	// Empty picks the whole document.
	JSONPath string
	// Timeout bounds each request; 0 selects providers.DefaultTimeout.
	Timeout time.Duration
	// HTTP holds auth (bearer, basic, OAuth2) and TLS. Start from
	// config.DefaultHTTPClientConfig to follow redirects and allow HTTP/2.
	HTTP config.HTTPClientConfig
}

// Options configures a Factory.
type Options struct {
	// MaxClients bounds cached HTTP clients; 0 selects providers.DefaultMaxClients.
	MaxClients int
	// MaxResponseBytes bounds a response body; 0 selects DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Factory builds Providers that share cached HTTP clients and one query executor.
type Factory struct {
	exec     *metricsq.Executor
	clients  *providers.ClientCache
	maxBytes int64
}

// NewFactory returns a Factory sending every request through exec, the process's shared
// executor, so runs measuring the same endpoint at the same tick share one request.
func NewFactory(exec *metricsq.Executor, opts Options) (*Factory, error) {
	if exec == nil {
		return nil, errors.New("web provider: a query executor is required")
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &Factory{
		exec:     exec,
		clients:  providers.NewClientCache("promgate-web", opts.MaxClients),
		maxBytes: opts.MaxResponseBytes,
	}, nil
}

// Provider measures one metric's web request.
type Provider struct {
	exec     *metricsq.Executor
	client   *http.Client
	method   string
	url      string
	body     string
	headers  map[string]string
	path     string
	timeout  time.Duration
	maxBytes int64
	shownURL string // URL without credentials or query string, for messages
	display  string // method and shownURL
	target   string
	identity string
}

var _ providers.Provider = (*Provider)(nil)

// New returns a Provider for cfg; the HTTP client comes from the cache.
func (f *Factory) New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("web provider: URL %q is not an http(s) URL", cfg.URL)
	}
	method := strings.ToUpper(cfg.Method)
	if method == "" {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodPost {
		return nil, fmt.Errorf("web provider: method %q is not GET or POST", cfg.Method)
	}
	path := normalizePath(cfg.JSONPath)
	if err := jsonpath.New("web").Parse(path); err != nil {
		return nil, fmt.Errorf("web provider: jsonPath %q: %w", cfg.JSONPath, err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = providers.DefaultTimeout
	}
	client, key, err := f.clients.Client(cfg.HTTP, nil)
	if err != nil {
		return nil, fmt.Errorf("web provider for %s: %w", u.Redacted(), err)
	}
	shown := *u
	shown.RawQuery, shown.Fragment = "", ""
	return &Provider{
		exec:     f.exec,
		client:   client,
		method:   method,
		url:      cfg.URL,
		body:     cfg.Body,
		headers:  cfg.Headers,
		path:     path,
		timeout:  timeout,
		maxBytes: f.maxBytes,
		shownURL: shown.Redacted(),
		display:  method + " " + shown.Redacted(),
		// Concurrency is bounded per host and identity, like a Prometheus target; the
		// request itself is identified by everything that shapes its answer.
		target:   u.Scheme + "://" + u.Host + "#" + key,
		identity: providers.ConfigKey(method, cfg.URL, cfg.Body, cfg.Headers, path),
	}, nil
}

// normalizePath wraps a bare path in braces: without them client-go's JSONPath treats the
// text as a literal template and would "pick" the path itself.
func normalizePath(p string) string {
	p = strings.TrimSpace(p)
	switch {
	case p == "":
		return "{$}"
	case strings.Contains(p, "{"):
		return p
	default:
		return "{" + p + "}"
	}
}

// Measure sends the request at q.Tick through the shared executor and shapes the picked
// value.
func (p *Provider) Measure(ctx context.Context, q providers.Query) (providers.Measurement, error) {
	req := metricsq.Request{Provider: ProviderName, Target: p.target, Query: p.identity, Tick: q.Tick}
	resp, err := p.exec.Execute(ctx, req, p.do)
	if err != nil {
		return providers.Measurement{}, fmt.Errorf("querying %s: %w", p.display, err)
	}
	res, err := metricsq.Shape(resp.Value)
	if err != nil {
		return providers.Measurement{}, fmt.Errorf("querying %s: %w", p.display, err)
	}
	return providers.Measurement{Result: res, Value: res.String()}, nil
}

func (p *Provider) do(ctx context.Context, req metricsq.Request) (metricsq.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var body io.Reader
	if p.body != "" {
		body = strings.NewReader(p.body)
	}
	hr, err := http.NewRequestWithContext(ctx, p.method, p.url, body)
	if err != nil {
		return metricsq.Response{}, fmt.Errorf("building request: %w", err)
	}
	hr.Header.Set("Accept", "application/json")
	if p.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range p.headers {
		hr.Header.Set(k, v)
	}
	resp, err := p.client.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = p.shownURL // the query string may carry an API key
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return metricsq.Response{}, fmt.Errorf("timed out after %s: %w", p.timeout, err)
		}
		return metricsq.Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBytes+1))
	if err != nil {
		return metricsq.Response{}, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(data)) > p.maxBytes {
		return metricsq.Response{}, fmt.Errorf("response larger than %d bytes", p.maxBytes)
	}
	if resp.StatusCode/100 != 2 {
		return metricsq.Response{}, fmt.Errorf("status %d: %s", resp.StatusCode, excerpt(data))
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return metricsq.Response{}, fmt.Errorf("decoding JSON: %w", err)
	}
	v, err := pick(p.path, doc, req.Tick)
	if err != nil {
		return metricsq.Response{}, err
	}
	return metricsq.Response{Value: v}, nil
}

// pick applies the JSONPath and turns what it finds into a Prometheus value, so web
// metrics are shaped and classified exactly like Prometheus ones: one number is a
// scalar; an array, or several matches, a vector; null or nothing found is an empty
// vector (no data); anything that is not a number is an error naming the path.
func pick(path string, doc any, tick time.Time) (model.Value, error) {
	if doc == nil {
		return model.Vector{}, nil
	}
	// A parsed JSONPath keeps state while it runs, so each call parses its own.
	jp := jsonpath.New("web").AllowMissingKeys(true)
	if err := jp.Parse(path); err != nil {
		return nil, fmt.Errorf("jsonPath %s: %w", path, err)
	}
	results, err := jp.FindResults(doc)
	if err != nil {
		return nil, fmt.Errorf("jsonPath %s: %w", path, err)
	}
	var found []any
	for _, rs := range results {
		for _, r := range rs {
			if r.IsValid() {
				found = append(found, r.Interface())
			} else {
				found = append(found, nil)
			}
		}
	}
	ts := model.TimeFromUnixNano(tick.UnixNano())
	if len(found) == 1 {
		if _, isArray := found[0].([]any); !isArray {
			if found[0] == nil {
				return model.Vector{}, nil
			}
			f, err := number(found[0], path)
			if err != nil {
				return nil, err
			}
			return &model.Scalar{Value: model.SampleValue(f), Timestamp: ts}, nil
		}
	}
	var items []any
	for _, x := range found {
		if arr, ok := x.([]any); ok {
			items = append(items, arr...)
		} else {
			items = append(items, x)
		}
	}
	vec := make(model.Vector, 0, len(items))
	for _, x := range items {
		f := math.NaN() // a null inside an array is a missing sample, not a zero
		if x != nil {
			if f, err = number(x, path); err != nil {
				return nil, err
			}
		}
		vec = append(vec, &model.Sample{Metric: model.Metric{}, Value: model.SampleValue(f), Timestamp: ts})
	}
	return vec, nil
}

func number(x any, path string) (float64, error) {
	switch x := x.(type) {
	case float64:
		return x, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	}
	b, _ := json.Marshal(x)
	return 0, fmt.Errorf("value at %s is %s, not a number", path, excerpt(b))
}

// excerpt keeps messages that end up in status short.
func excerpt(b []byte) string {
	const limit = 200
	b = bytes.TrimSpace(b)
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
