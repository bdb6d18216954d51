// Package web measures metrics from any HTTP endpoint returning JSON, picking the value
// with a Kubernetes JSONPath expression and handing it to the conditions as JSON decodes
// it, as Argo Rollouts' web provider does; numbers are also read as a Prometheus scalar or
// vector, so conditions written for numbers work alike for both kinds.
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

// Name is this kind's field in v1alpha1.MetricProvider and its label in the executor's
// metrics.
const Name = "web"

// DefaultMaxResponseBytes bounds a response body when Options leaves it unset: a runaway
// endpoint must not exhaust the controller's memory.
const DefaultMaxResponseBytes = 10 << 20

// Config is one metric's web request, with secrets already resolved.
type Config struct {
	// URL is the endpoint, rendered from the template's args.
	URL string
	// Method is GET (the default), POST or PUT.
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

// Factory builds Sources that share cached HTTP clients.
type Factory struct {
	clients  *providers.ClientCache
	maxBytes int64
}

// NewFactory returns a Factory.
func NewFactory(opts Options) *Factory {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &Factory{
		clients:  providers.NewClientCache("promgate-web", opts.MaxClients),
		maxBytes: opts.MaxResponseBytes,
	}
}

// Source sends one metric's web request.
type Source struct {
	desc     providers.Description
	client   *http.Client
	method   string
	url      string
	body     string
	headers  map[string]string
	path     string
	timeout  time.Duration
	maxBytes int64
	shownURL string // URL without credentials or query string, for messages
}

var _ providers.Source = (*Source)(nil)

// New returns a Source for cfg; the HTTP client comes from the cache.
func (f *Factory) New(cfg Config) (*Source, error) {
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("web provider: %w", err)
	}
	method, err := parseMethod(cfg.Method)
	if err != nil {
		return nil, fmt.Errorf("web provider: %w", err)
	}
	path, err := parsePath(cfg.JSONPath)
	if err != nil {
		return nil, fmt.Errorf("web provider: %w", err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = providers.DefaultTimeout
	}
	client, key, err := f.clients.Client(cfg.HTTP, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("web provider for %s: %w", u.Redacted(), err)
	}
	shown := *u
	shown.RawQuery, shown.Fragment = "", ""
	return &Source{
		desc: providers.Description{
			Kind: Name,
			// Concurrency is bounded per host and identity, like a Prometheus target; the
			// request itself is identified by everything that shapes its answer.
			Target: u.Scheme + "://" + u.Host + "#" + key,
			Query:  providers.ConfigKey(method, cfg.URL, cfg.Body, cfg.Headers, path),
			Shown:  method + " " + shown.Redacted(),
		},
		client:   client,
		method:   method,
		url:      cfg.URL,
		body:     cfg.Body,
		headers:  cfg.Headers,
		path:     path,
		timeout:  timeout,
		maxBytes: f.maxBytes,
		shownURL: shown.Redacted(),
	}, nil
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q is not an http(s) URL", raw)
	}
	return u, nil
}

func parseMethod(m string) (string, error) {
	switch method := strings.ToUpper(m); method {
	case "":
		return http.MethodGet, nil
	case http.MethodGet, http.MethodPost, http.MethodPut:
		return method, nil
	}
	return "", fmt.Errorf("method %q is not GET, POST or PUT", m)
}

// parsePath checks a JSONPath and returns it normalised.
func parsePath(p string) (string, error) {
	path := normalizePath(p)
	if err := jsonpath.New("web").Parse(path); err != nil {
		return "", fmt.Errorf("jsonPath %q: %w", p, err)
	}
	return path, nil
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

// Describe says what the source asks.
func (s *Source) Describe() providers.Description { return s.desc }

// Fetch sends the request and picks the value; q's tick stamps the samples.
func (s *Source) Fetch(ctx context.Context, q providers.Query) (providers.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	hr, err := http.NewRequestWithContext(ctx, s.method, s.url, body)
	if err != nil {
		return providers.Response{}, fmt.Errorf("building request: %w", err)
	}
	hr.Header.Set("Accept", "application/json")
	if s.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range s.headers {
		hr.Header.Set(k, v)
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = s.shownURL // the query string may carry an API key
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return providers.Response{}, fmt.Errorf("timed out after %s: %w", s.timeout, err)
		}
		return providers.Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes+1))
	if err != nil {
		return providers.Response{}, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(data)) > s.maxBytes {
		return providers.Response{}, fmt.Errorf("response larger than %d bytes", s.maxBytes)
	}
	if resp.StatusCode/100 != 2 {
		return providers.Response{}, fmt.Errorf("status %d: %s", resp.StatusCode, excerpt(data))
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return providers.Response{}, fmt.Errorf("decoding JSON: %w", err)
	}
	numbers, picked, err := pick(s.path, doc, q.Tick)
	if err != nil {
		return providers.Response{}, err
	}
	return providers.Response{Value: numbers, Document: &picked}, nil
}

// pick applies the JSONPath and returns what it found as a document: the value itself
// when there is one match, a list of the matches when there are several, null when there
// is none. numbers is the same read as a Prometheus value, nil unless it is numbers: one
// number is a scalar; a list of numbers, or several matches, a vector. A number written
// as a string counts as one; a null in a list is a missing sample.
func pick(path string, doc any, tick time.Time) (numbers model.Value, picked metricsq.Document, err error) {
	if doc == nil {
		return nil, picked, nil
	}
	// A parsed JSONPath keeps state while it runs, so each call parses its own.
	jp := jsonpath.New("web").AllowMissingKeys(true)
	if err := jp.Parse(path); err != nil {
		return nil, picked, fmt.Errorf("jsonPath %s: %w", path, err)
	}
	results, err := jp.FindResults(doc)
	if err != nil {
		return nil, picked, fmt.Errorf("jsonPath %s: %w", path, err)
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
	switch len(found) {
	case 0:
	case 1:
		picked.Value = found[0]
	default:
		picked.Value = found
	}
	return asNumbers(found, tick), picked, nil
}

// asNumbers reads found as pick describes; nil when it is not numbers.
func asNumbers(found []any, tick time.Time) model.Value {
	ts := model.TimeFromUnixNano(tick.UnixNano())
	switch len(found) {
	case 0:
		return nil
	case 1:
		if _, isArray := found[0].([]any); !isArray {
			f, ok := number(found[0])
			if !ok {
				return nil
			}
			return &model.Scalar{Value: model.SampleValue(f), Timestamp: ts}
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
		f := math.NaN()
		if x != nil {
			var ok bool
			if f, ok = number(x); !ok {
				return nil
			}
		}
		vec = append(vec, &model.Sample{Metric: model.Metric{}, Value: model.SampleValue(f), Timestamp: ts})
	}
	return vec
}

func number(x any) (float64, bool) {
	switch x := x.(type) {
	case float64:
		return x, true
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, true
		}
	}
	return 0, false
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
