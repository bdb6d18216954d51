// Package demo is `make demo`: two unattended releases in a compressed night window, on
// the embedded test bed with the real promgate controller process, the traffic simulator,
// Prometheus and Alertmanager. A healthy green is promoted by the window with no human; a
// bad green fires a Prometheus alerting rule, Alertmanager calls promgate's webhook, and the
// release is aborted with all traffic back on blue.
//
// The demo is a test because the test bed's API takes testing.TB (it ties every process to
// the test's cleanup and log folder). It prints its timeline straight to stdout, so
// `go test -v` shows it as it happens, and fails unless both outcomes happened.
package demo
