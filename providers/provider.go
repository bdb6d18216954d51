// Package providers defines how the analysis engine takes a measurement and how a provider
// kind turns its part of a metric's spec into something to measure, and holds the pieces
// the kinds (prometheus, web, job) share: Secrets, headers and auth mapped from the spec,
// and HTTP clients built from prometheus/common's HTTPClientConfig (with SigV4 signing
// when asked) and cached per configuration.
package providers

import (
	"context"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
)

// DefaultTimeout bounds one measurement when a configuration sets no timeout.
const DefaultTimeout = 30 * time.Second

// Provider takes measurements for one metric and is safe for concurrent use.
//
// The engine classifies the outcome: an error, including a timeout, makes the
// measurement Error; Measurement.Result.NoData goes to the metric's noData policy;
// anything else goes to Measurement.Verdict when there is one (a kind whose Answers are
// Verdicts), else to the conditions.
type Provider interface {
	Measure(ctx context.Context, q Query) (Measurement, error)
}

// Query says which measurement to take.
type Query struct {
	// Tick is the evaluation time aligned to the metric interval; runs measuring the
	// same metric at the same tick share one call. Zero means "now" and is never shared.
	Tick time.Time
	// Seq numbers the metric's measurements from 0, Error ones included. It comes from
	// the run's status, so a restarted controller asks for the same measurement again.
	Seq int32
}

// Measurement is one successful provider call.
type Measurement struct {
	// Result is the value shaped for conditions, or the numbers a verdict was reached on
	// (the judge's score); read-only, as runs may share it.
	Result metricsq.Result
	// Verdict is set by a kind that judges its own measurements (Answers() == Verdicts).
	Verdict *Verdict
	// Warnings and Infos are the endpoint's annotations (PromQL warnings and info
	// notices), kept so a dubious query is visible next to its value.
	Warnings []string
	Infos    []string
}

// Verdict is a measurement a provider judged itself, taken in place of conditions: a
// Job's outcome, or the judge's score against its thresholds.
type Verdict struct {
	// Phase is Successful, Inconclusive or Failed, or Running while the measurement is
	// still under way: the engine records nothing and asks again after RetryAfter. A
	// measurement that could not be taken is an error, as for any provider.
	Phase v1alpha1.AnalysisPhase
	// Value is the measurement's value in status: what was judged and the figures that
	// decided, on one line, bounded in size as a shaped result is; "" when there is none.
	Value string
	// Message says why, e.g. the Job's condition and its last log lines.
	Message string
	// RetryAfter is how soon to ask again about a Running measurement.
	RetryAfter time.Duration
}

// Answers is what a kind's measurements give the engine to judge.
type Answers int

const (
	// Numbers are a Prometheus result: conditions read result as a scalar or a vector.
	Numbers Answers = iota
	// Documents are JSON values; those that are numbers are also read as Numbers are.
	Documents
	// Verdicts are judged by the provider itself (the job by its Job's outcome, the
	// judge by its score): a metric of this kind has no conditions. Numbers sent with a
	// verdict still go to the noData policy first.
	Verdicts
)

// Source fetches one metric's answer from its endpoint and does nothing else: the shared
// executor (package providers/shared) makes a Provider of it, which shares identical
// calls between runs, bounds and times them, and shapes each answer once. A Source is
// built once per metric configuration and is safe for concurrent use.
type Source interface {
	// Describe says what Fetch asks. It is the same at every call.
	Describe() Description
	// Fetch takes the measurement q names. ctx ends only when nobody waits for the answer
	// any more, so Fetch applies its own timeout.
	Fetch(ctx context.Context, q Query) (Response, error)
}

// Description identifies what a Source asks: sources with the same Kind, Target and
// Query asked at the same tick get the same answer, unless Unshared.
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
	// Type is the type of the answer when it is known before asking, such as a PromQL
	// expression's; model.ValNone otherwise.
	Type model.ValueType
	// Unshared marks a source each of whose calls is a measurement of its own (a Job
	// per measurement): calls are neither shared nor kept.
	Unshared bool
}

// Response is an endpoint's raw answer. Numbers are typed as Prometheus types them, so
// every kind's numbers are shaped and judged alike.
type Response struct {
	// Value is the answer's numbers; nil when it has none.
	Value model.Value
	// Document is a JSON answer as it is; Value then holds its numbers, if it is numbers.
	Document *metricsq.Document
	// Verdict is the answer of a kind that judges its own measurements; Value, when set,
	// holds the numbers it was reached on.
	Verdict  *Verdict
	Warnings []string
	Infos    []string
}
