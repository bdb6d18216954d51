// Package metricsq turns analysis queries into numbers conditions can judge: it renders
// {{args.x}} into query text, checks PromQL syntax before a run starts, and shapes
// Prometheus results the way conditions expect them.
package metricsq
