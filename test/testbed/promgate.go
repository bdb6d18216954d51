package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/promgate/promgate/test/testbin"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// PromgateBinary builds cmd/promgate once per test process and returns its path;
// $PROMGATE_BINARY points at an existing build instead (e.g. to benchmark a release).
func PromgateBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("PROMGATE_BINARY"); p != "" {
			buildPath = p
			return
		}
		root, err := testbin.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "promgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "promgate")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/promgate")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building cmd/promgate: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Promgate is the promgate controller running as its own process, as in production.
type Promgate struct {
	*Process
	// MetricsURL serves the controller's /metrics.
	MetricsURL string
}

// StartPromgate runs `promgate controller` against the control plane with extra flags and
// waits until it is ready; it stops with the test.
func StartPromgate(t testing.TB, cp *ControlPlane, extra ...string) *Promgate {
	t.Helper()
	ctx, cancel := startContext()
	defer cancel()
	metricsPort, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &Promgate{Process: &Process{Name: "promgate", Path: PromgateBinary(t), LogPath: filepath.Join(cp.LogDir, "promgate.log")}}
	if _, err := startListening(ctx, p.Process, func(port int) []string {
		return append([]string{
			"controller",
			"--kubeconfig=" + cp.Kubeconfig,
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(port),
		}, extra...)
	}, func(port int) error { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)) }); err != nil {
		t.Fatalf("starting promgate: %v", err)
	}
	p.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	t.Cleanup(p.Stop)
	return p
}
