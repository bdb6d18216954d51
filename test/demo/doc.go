// Package demo is `make demo`: three unattended releases in a compressed night window, on
// the embedded test bed with the real promgate controller process, the traffic simulator,
// Prometheus and Alertmanager. A healthy green is promoted by the window with no human; a
// green answering errors fires a Prometheus alerting rule, Alertmanager calls promgate's
// webhook, and the release is aborted with all traffic back on blue; a green twice as slow
// is judged against blue on latency (the statistical judge) and aborted at its first step.
//
// The demo is a test because the test bed's API takes testing.TB (it ties every process to
// the test's cleanup and log folder). It prints its timeline straight to stdout, so
// `go test -v` shows it as it happens, and fails unless the three outcomes happened.
package demo
