package testbed

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoopbackArgs: the addresses a Deployment binds on every interface move to free
// loopback ports, explicit ones stay, and the metrics and probe addresses are always set.
func TestLoopbackArgs(t *testing.T) {
	args, addrs, err := loopbackArgs([]string{
		"--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--alert-webhook-bind-address=:9444", "--prometheus-address=http://prometheus:9090",
	}, 40001)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:40001", addrs[probeFlag])
	for _, flag := range []string{metricsFlag, webhookFlag} {
		assert.True(t, strings.HasPrefix(addrs[flag], "127.0.0.1:") && addrs[flag] != "127.0.0.1:0", "%s on a loopback port: %s", flag, addrs[flag])
	}
	assert.Equal(t, []string{
		"--leader-elect", "--prometheus-address=http://prometheus:9090",
		metricsFlag + "=" + addrs[metricsFlag], probeFlag + "=127.0.0.1:40001", webhookFlag + "=" + addrs[webhookFlag],
	}, args)

	args, addrs, err = loopbackArgs([]string{"--alert-webhook-bind-address=127.0.0.1:5555"}, 40002)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5555", addrs[webhookFlag], "an address with a host is the test's own choice")
	assert.Contains(t, args, metricsFlag+"="+addrs[metricsFlag], "metrics are always served")
}
