// Package prometheus measures metrics with PromQL against anything that speaks the
// Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers"
)

// ProviderName labels this provider's queries in the executor's metrics.
const ProviderName = "prometheus"

// Config is one metric's Prometheus query, with secrets already resolved.
type Config struct {
	// Address is the API's base URL; empty selects the factory's default address.
	Address string
	// Query is the rendered PromQL.
	Query string
	// Range makes this a range query ending at the tick; nil for an instant query.
	Range *Range
	// Timeout bounds each query, client and server side; 0 selects providers.DefaultTimeout.
	Timeout time.Duration
	// Headers are set on every request, e.g. X-Scope-OrgID for Mimir or Cortex tenants.
	Headers map[string]string
	// HTTP holds auth (bearer, basic, OAuth2) and TLS. Start from
	// config.DefaultHTTPClientConfig to follow redirects and allow HTTP/2.
	HTTP config.HTTPClientConfig
}

// Range is a range query over [tick-Window, tick].
type Range struct {
	Window time.Duration
	Step   time.Duration
}

// Options configures a Factory.
type Options struct {
	// DefaultAddress is used by configurations that name no address.
	DefaultAddress string
	// MaxClients bounds cached HTTP clients; 0 selects providers.DefaultMaxClients.
	MaxClients int
}

// Factory builds Providers that share cached HTTP clients and one query executor.
type Factory struct {
	exec           *metricsq.Executor
	clients        *providers.ClientCache
	defaultAddress string
}

// NewFactory returns a Factory sending every query through exec, the process's shared
// executor.
func NewFactory(exec *metricsq.Executor, opts Options) (*Factory, error) {
	if exec == nil {
		return nil, errors.New("prometheus provider: a query executor is required")
	}
	return &Factory{
		exec:           exec,
		clients:        providers.NewClientCache("promgate-prometheus", opts.MaxClients),
		defaultAddress: opts.DefaultAddress,
	}, nil
}

// Provider measures one metric's query.
type Provider struct {
	exec    *metricsq.Executor
	api     v1.API
	client  *http.Client
	address string // redacted, for messages
	target  string
	query   string
	rng     *Range
	timeout time.Duration
}

var _ providers.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It is cheap: the HTTP client comes from the cache, so
// calling New at every reconcile does not open new connections.
func (f *Factory) New(cfg Config) (*Provider, error) {
	addr := cfg.Address
	if addr == "" {
		addr = f.defaultAddress
	}
	if addr == "" {
		return nil, errors.New("prometheus provider: no address configured and no default address")
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus provider: address %q is not an http(s) URL", addr)
	}
	if cfg.Query == "" {
		return nil, errors.New("prometheus provider: query is empty")
	}
	if r := cfg.Range; r != nil && (r.Window <= 0 || r.Step <= 0) {
		return nil, fmt.Errorf("prometheus provider: range needs a positive window and step, got %s and %s", r.Window, r.Step)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = providers.DefaultTimeout
	}
	client, key, err := f.clients.Client(cfg.HTTP, cfg.Headers)
	if err != nil {
		return nil, fmt.Errorf("prometheus provider for %s: %w", u.Redacted(), err)
	}
	c, err := api.NewClient(api.Config{Address: addr, Client: client})
	if err != nil {
		return nil, fmt.Errorf("prometheus provider for %s: %w", u.Redacted(), err)
	}
	return &Provider{
		exec:    f.exec,
		api:     v1.NewAPI(c),
		client:  client,
		address: u.Redacted(),
		// Tenants and credentials are part of the target: they see different data and
		// may have different limits.
		target:  addr + "#" + key,
		query:   cfg.Query,
		rng:     cfg.Range,
		timeout: timeout,
	}, nil
}

// Measure runs the query at q.Tick through the shared executor and shapes the result.
func (p *Provider) Measure(ctx context.Context, q providers.Query) (providers.Measurement, error) {
	req := metricsq.Request{Provider: ProviderName, Target: p.target, Query: p.query, Tick: q.Tick}
	if p.rng != nil {
		end := q.Tick
		if end.IsZero() {
			end = time.Now()
		}
		req.Range = &metricsq.Range{Start: end.Add(-p.rng.Window), End: end, Step: p.rng.Step}
	}
	resp, err := p.exec.Execute(ctx, req, p.do)
	if err != nil {
		return providers.Measurement{}, fmt.Errorf("querying %s: %w", p.address, err)
	}
	res, err := metricsq.Shape(resp.Value)
	if err != nil {
		return providers.Measurement{}, fmt.Errorf("querying %s: %w", p.address, err)
	}
	return providers.Measurement{Result: res, Value: res.String(), Warnings: resp.Warnings, Infos: resp.Infos}, nil
}

// do is the real HTTP call. The timeout goes to Prometheus too, so it stops evaluating
// a query nobody will read.
func (p *Provider) do(ctx context.Context, req metricsq.Request) (metricsq.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var (
		v        model.Value
		warnings v1.Warnings
		infos    v1.Infos
		err      error
	)
	if req.Range != nil {
		r := v1.Range{Start: req.Range.Start, End: req.Range.End, Step: req.Range.Step}
		v, warnings, infos, err = p.api.QueryRange(ctx, req.Query, r, v1.WithTimeout(p.timeout))
	} else {
		v, warnings, infos, err = p.api.Query(ctx, req.Query, req.Tick, v1.WithTimeout(p.timeout))
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return metricsq.Response{}, fmt.Errorf("timed out after %s: %w", p.timeout, err)
		}
		return metricsq.Response{}, err
	}
	return metricsq.Response{Value: v, Warnings: warnings, Infos: infos}, nil
}
