package e2e

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/test/testbed"
)

// kubectl runs the real kubectl against the bed as a cluster admin and returns its output.
func kubectl(t *testing.T, cp *testbed.ControlPlane, args ...string) string {
	t.Helper()
	out, err := exec.Command(cp.Kubectl, append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...).CombinedOutput()
	require.NoError(t, err, "kubectl %v: %s", args, out)
	return string(out)
}
