// Package alerts aborts releases on Alertmanager alerts (DESIGN.md section 4). It parses a
// Rollout's spec.abortOn.alerts matchers, serves Alertmanager's webhook (payload version
// "4") and records a matching firing alert in the Rollout's status.alertAbort, and reads
// firing alerts from Alertmanager's v2 API for pull mode. It only records the alert: the
// Rollout controller performs the abort and clears the field, so a webhook and a pull
// check that both see the alert cannot abort twice.
package alerts
