// Package alerts aborts releases on Alertmanager alerts (DESIGN.md section 4). It parses a
// Rollout's spec.abortOn.alerts matchers, serves Alertmanager's webhook (payload version
// "4") and reads firing alerts from Alertmanager's v2 API for pull mode. A matching firing
// alert that reaches the webhook sends the release's traffic back to the stable version in
// the same request, through the same routers the controller uses, and is then recorded in
// the Rollout's status.alertAbort: the Rollout controller finishes the abort (runs, the
// workload, the report) and clears the field, so a webhook and a pull check that both see
// the alert cannot abort twice.
package alerts
