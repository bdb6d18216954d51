// Package metricsq turns analysis queries into values conditions can judge: it renders
// {{args.x}} into text, checks PromQL syntax before a run starts, and shapes Prometheus
// results and JSON documents the way conditions expect them.
package metricsq
