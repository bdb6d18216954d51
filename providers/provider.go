// Package providers defines how the analysis engine takes a measurement, and the pieces
// its implementations (prometheus, web) share: HTTP clients built from
// prometheus/common's HTTPClientConfig and cached per configuration.
package providers

import (
	"context"
	"time"

	"github.com/promgate/promgate/metricsq"
)

// DefaultTimeout bounds one measurement when a configuration sets no timeout.
const DefaultTimeout = 30 * time.Second

// Provider takes measurements for one metric. An instance is built once per metric
// configuration (cheaply: clients are cached underneath) and is safe for concurrent use.
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
	// Result is the value shaped for conditions.
	Result metricsq.Result
	// Value is Result as text for status, e.g. "[0.93, 0.95]".
	Value string
	// Warnings and Infos are the endpoint's annotations (PromQL warnings and info
	// notices), kept so a dubious query is visible next to its value.
	Warnings []string
	Infos    []string
}
