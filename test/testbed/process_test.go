package testbed

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPortClashRetries hands Prometheus a port someone else holds first: the bed must notice
// the failed bind and start it on another port.
func TestPortClashRetries(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	calls := 0
	freePort = func() (int, error) {
		calls++
		if calls == 1 {
			return takenPort, nil
		}
		return FreePort()
	}
	t.Cleanup(func() { freePort = FreePort })

	p := StartPrometheus(t, PrometheusOptions{})
	require.NotEqual(t, "http://127.0.0.1:"+strconv.Itoa(takenPort), p.URL)
	require.GreaterOrEqual(t, calls, 2)
	require.True(t, logMentions(p.LogPath, "address already in use"), "the first attempt failed on the clash")
}
