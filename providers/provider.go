// Package providers defines how the analysis engine takes a measurement and how a provider
// kind turns its part of a metric's spec into something to measure, and holds the pieces
// the kinds (prometheus, web) share: args, Secrets, headers and auth mapped from the spec,
// and HTTP clients built from prometheus/common's HTTPClientConfig and cached per
// configuration.
package providers

import (
	"context"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/metricsq"
)

// DefaultTimeout bounds one measurement when a configuration sets no timeout.
const DefaultTimeout = 30 * time.Second

// Provider takes measurements for one metric and is safe for concurrent use.
//
// The engine classifies the outcome: an error, including a timeout, makes the
// measurement Error; Measurement.Result.NoData goes to the metric's noData policy;
// anything else goes to the conditions.
type Provider interface {
	Measure(ctx context.Context, q Query) (Measurement, error)
}

// Query says when to measure.
type Query struct {
	// Tick is the evaluation time aligned to the metric interval; runs measuring the
	// same metric at the same tick share one call. Zero means "now" and is never shared.
	Tick time.Time
}

// Measurement is one successful provider call.
type Measurement struct {
	// Result is the value shaped for conditions; read-only, as runs may share it.
	Result metricsq.Result
	// Warnings and Infos are the endpoint's annotations (PromQL warnings and info
	// notices), kept so a dubious query is visible next to its value.
	Warnings []string
	Infos    []string
}

// Source fetches one metric's answer from its endpoint and does nothing else: the shared
// executor (package providers/shared) makes a Provider of it, which shares identical
// calls between runs, bounds and times them, and shapes each answer once. A Source is
// built once per metric configuration and is safe for concurrent use.
type Source interface {
	// Describe says what Fetch asks. It is the same at every call.
	Describe() Description
	// Fetch asks at tick (zero: now). ctx ends only when nobody waits for the answer any
	// more, so Fetch applies its own timeout.
	Fetch(ctx context.Context, tick time.Time) (Response, error)
}

// Description identifies what a Source asks: sources with the same Kind, Target and
// Query asked at the same tick get the same answer.
type Description struct {
	// Kind is the provider kind, e.g. "prometheus", for the executor's metrics labels.
	Kind string
	// Target is the endpoint and the identity used to reach it (address plus a hash of
	// auth and headers): two tenants of one Mimir are different targets. Calls in flight
	// are bounded per target.
	Target string
	// Query is everything else that shapes the answer.
	Query string
	// Shown names the source in messages, without credentials.
	Shown string
}

// Response is an endpoint's raw answer, as Prometheus types it: other kinds express their
// answer as a scalar or a vector, so every kind is shaped and judged alike.
type Response struct {
	Value    model.Value
	Warnings []string
	Infos    []string
}
