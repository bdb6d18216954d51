// Package metricsq turns analysis queries into numbers: it renders {{args.x}} into query
// text, checks PromQL syntax before a run starts, shapes Prometheus results the way
// conditions expect them, and runs every query in the process through one Executor that
// deduplicates identical requests and bounds the load on each Prometheus.
package metricsq
