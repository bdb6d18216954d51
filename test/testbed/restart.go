package testbed

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// apiServerGrace is how long a stopping kube-apiserver may drain before it is killed.
const apiServerGrace = 5 * time.Second

// RestartAPIServer stops kube-apiserver (SIGTERM, as a rolling upgrade of the control
// plane does, then SIGKILL after apiServerGrace), leaves it down for down, and starts the same binary with the same flags,
// certificates and etcd, so every client keeps its credentials but loses its connections
// and watches. It returns once the server is ready again. envtest starts the first
// process; the bed finds it by its port and runs its successors itself.
func (cp *ControlPlane) RestartAPIServer(t testing.TB, ctx context.Context, down time.Duration) error {
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		return fmt.Errorf("reading the API server address %q: %w", cp.Config.Host, err)
	}
	pid, args, err := findProcess("kube-apiserver", "--secure-port="+u.Port())
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping kube-apiserver (pid %d): %w", pid, err)
	}
	gone := func(context.Context) (bool, error) { return syscall.Kill(pid, 0) != nil, nil }
	// A draining server waits for its open watches up to its request timeout (a minute);
	// a kubelet kills it after its grace period, here a few seconds.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, apiServerGrace, true, gone); err != nil {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, gone); err != nil {
			return fmt.Errorf("kube-apiserver (pid %d) did not stop: %w", pid, err)
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	p := &Process{Name: "kube-apiserver", Path: args[0], Args: args[1:], LogPath: filepath.Join(cp.LogDir, "kube-apiserver.log")}
	if err := p.Start(); err != nil {
		return err
	}
	t.Cleanup(p.Stop)
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		body, err := cp.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && strings.TrimSpace(string(body)) == "ok", nil
	})
}

// findProcess finds the running process whose command is name with an argument arg, and
// returns its pid and command line.
func findProcess(name, arg string) (int, []string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, fmt.Errorf("listing processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) != name {
			continue
		}
		for _, a := range args[1:] {
			if a == arg {
				return pid, args, nil
			}
		}
	}
	return 0, nil, fmt.Errorf("no %s process with %s", name, arg)
}
