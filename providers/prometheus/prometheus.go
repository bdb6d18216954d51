// Package prometheus measures metrics with PromQL against anything that speaks the
// Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/sigv4"

	"github.com/promgate/promgate/providers"
)

// Name is this kind's field in v1alpha1.MetricProvider and its label in the executor's
// metrics.
const Name = "prometheus"

// Config is one metric's Prometheus query, with secrets already resolved.
type Config struct {
	// Address is the API's base URL; empty selects the factory's default address.
	Address string
	// Query is the rendered PromQL.
	Query string
	// Range makes this a range query; nil for an instant query.
	Range *Range
	// Timeout bounds each query, client and server side; 0 selects providers.DefaultTimeout.
	Timeout time.Duration
	// Headers are set on every request, e.g. X-Scope-OrgID for Mimir or Cortex tenants.
	Headers map[string]string
	// HTTP holds auth (bearer, basic, OAuth2) and TLS. Start from
	// config.DefaultHTTPClientConfig to follow redirects and allow HTTP/2.
	HTTP config.HTTPClientConfig
	// SigV4 signs every request, for Amazon Managed Service for Prometheus.
	SigV4 *sigv4.SigV4Config
	// Type is the query's PromQL type, as metricsq.Validate gives it.
	Type model.ValueType
}

// Range is a range query: over [tick-Window, tick], or from Start to End evaluated at the
// tick when Start is set.
type Range struct {
	Window time.Duration
	// Start and End are Argo Rollouts' bounds; End nil is the tick.
	Start, End *TimeExpr
	Step       time.Duration
}

// bounds is the range asked at tick.
func (r *Range) bounds(tick time.Time) (start, end time.Time, err error) {
	if r.Start == nil {
		return tick.Add(-r.Window), tick, nil
	}
	if start, err = r.Start.At(tick); err != nil {
		return start, end, err
	}
	end = tick
	if r.End != nil {
		if end, err = r.End.At(tick); err != nil {
			return start, end, err
		}
	}
	if !start.Before(end) {
		return start, end, fmt.Errorf("range start %s is not before its end %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return start, end, nil
}

// String is how the range reads in a source's description.
func (r *Range) String() string {
	if r.Start == nil {
		return fmt.Sprintf("range %s step %s", r.Window, r.Step)
	}
	end := "now()"
	if r.End != nil {
		end = r.End.String()
	}
	return fmt.Sprintf("range from %s to %s step %s", r.Start, end, r.Step)
}

// Options configures a Factory.
type Options struct {
	// DefaultAddress is used by configurations that name no address.
	DefaultAddress string
	// MaxClients bounds cached HTTP clients; 0 selects providers.DefaultMaxClients.
	MaxClients int
}

// Factory builds Sources that share cached HTTP clients.
type Factory struct {
	clients        *providers.ClientCache
	defaultAddress string
	// queries remembers rendered PromQL that parsed: every reconcile prepares its run
	// again, and parsing is the costliest part of that.
	queries validatedQueries
}

// NewFactory returns a Factory.
func NewFactory(opts Options) *Factory {
	return &Factory{
		clients:        providers.NewClientCache("promgate-prometheus", opts.MaxClients),
		defaultAddress: opts.DefaultAddress,
	}
}

// Source asks one metric's query of one Prometheus.
type Source struct {
	api     v1.API
	desc    providers.Description
	query   string
	rng     *Range
	timeout time.Duration
}

var _ providers.Source = (*Source)(nil)

// New returns a Source for cfg. It is cheap: the HTTP client comes from the cache, so
// calling New at every reconcile does not open new connections.
func (f *Factory) New(cfg Config) (*Source, error) {
	addr := cfg.Address
	if addr == "" {
		addr = f.defaultAddress
	}
	u, err := parseAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("prometheus provider: %w", err)
	}
	if cfg.Query == "" {
		return nil, errors.New("prometheus provider: query is empty")
	}
	if r := cfg.Range; r != nil && ((r.Start == nil && r.Window <= 0) || r.Step <= 0) {
		return nil, fmt.Errorf("prometheus provider: range needs a positive window or a start, and a positive step, got %s and %s", r.Window, r.Step)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = providers.DefaultTimeout
	}
	client, key, err := f.clients.Client(cfg.HTTP, cfg.Headers, cfg.SigV4)
	if err != nil {
		return nil, fmt.Errorf("prometheus provider for %s: %w", u.Redacted(), err)
	}
	c, err := api.NewClient(api.Config{Address: addr, Client: client})
	if err != nil {
		return nil, fmt.Errorf("prometheus provider for %s: %w", u.Redacted(), err)
	}
	question, typ := "instant: "+cfg.Query, cfg.Type
	if r := cfg.Range; r != nil {
		question, typ = r.String()+": "+cfg.Query, model.ValMatrix
	}
	return &Source{
		api: v1.NewAPI(c),
		desc: providers.Description{
			Kind: Name,
			// Tenants and credentials are part of the target: they see different data
			// and may have different limits.
			Target: addr + "#" + key,
			Query:  question,
			Shown:  u.Redacted(),
			Type:   typ,
		},
		query:   cfg.Query,
		rng:     cfg.Range,
		timeout: timeout,
	}, nil
}

// parseAddress accepts an http(s) URL with a host.
func parseAddress(addr string) (*url.URL, error) {
	if addr == "" {
		return nil, errors.New("no address configured and no default address")
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("address %q is not an http(s) URL", addr)
	}
	return u, nil
}

// Describe says what the source asks.
func (s *Source) Describe() providers.Description { return s.desc }

// Fetch runs the query at q's tick. The timeout goes to Prometheus too, so it stops
// evaluating a query nobody will read.
func (s *Source) Fetch(ctx context.Context, q providers.Query) (providers.Response, error) {
	tick := q.Tick
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var (
		v        model.Value
		warnings v1.Warnings
		infos    v1.Infos
		err      error
	)
	if s.rng != nil {
		if tick.IsZero() {
			tick = time.Now()
		}
		start, end, rerr := s.rng.bounds(tick)
		if rerr != nil {
			return providers.Response{}, rerr
		}
		r := v1.Range{Start: start, End: end, Step: s.rng.Step}
		v, warnings, infos, err = s.api.QueryRange(ctx, s.query, r, v1.WithTimeout(s.timeout))
	} else {
		v, warnings, infos, err = s.api.Query(ctx, s.query, tick, v1.WithTimeout(s.timeout))
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return providers.Response{}, fmt.Errorf("timed out after %s: %w", s.timeout, err)
		}
		return providers.Response{}, err
	}
	return providers.Response{Value: v, Warnings: warnings, Infos: infos}, nil
}
