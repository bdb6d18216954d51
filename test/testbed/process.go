package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is one binary the bed runs, with its output in a log file.
type Process struct {
	Name string
	Path string
	Args []string
	// Env is added to the test process's environment.
	Env     []string
	LogPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs the process. It dies with the test process (parent-death signal) so that no
// binary outlives a crashed or timed-out test.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log of %s: %w", p.Name, err)
	}
	fmt.Fprintf(logFile, "=== %s %s %s\n", time.Now().Format(time.RFC3339), p.Path, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Path, p.Args...)
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s (%s): %w; log %s", p.Name, p.Path, err, p.LogPath)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	track(p)
	go func(done chan struct{}) {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}(p.done)
	return nil
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true, nil
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after the grace period.
func (p *Process) Stop() {
	p.signal(syscall.SIGTERM, 10*time.Second)
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	p.signal(syscall.SIGKILL, 0)
}

func (p *Process) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.mu.Lock()
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	untrack(p)
}

// Pid is the running process's id, 0 when stopped.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// startListening starts a server process on a free loopback port and waits until ready
// answers. A port taken between choosing and binding (another test, another bed) makes the
// process exit; it is then retried on a fresh port.
func startListening(ctx context.Context, p *Process, args func(port int) []string, ready func(port int) error) (int, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		p.Args = args(port)
		if err := p.Start(); err != nil {
			return 0, err
		}
		err = waitReady(ctx, p, func() error { return ready(port) })
		if err == nil {
			return port, nil
		}
		p.Stop()
		lastErr = err
		if !logMentions(p.LogPath, "address already in use") {
			break
		}
	}
	return 0, lastErr
}

// waitReady polls ready until it succeeds, the process exits or ctx ends.
func waitReady(ctx context.Context, p *Process, ready func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited before it was ready (%v); log %s", p.Name, err, p.LogPath)
		}
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (last check: %v); log %s", p.Name, ctx.Err(), last, p.LogPath)
		case <-tick.C:
		}
	}
}

func logMentions(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// freePort is replaced in tests to provoke a port clash.
var freePort = FreePort

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// The registry of running processes lets an interrupt (Ctrl-C) stop them all before the
// test binary exits; a crash is covered by the parent-death signal.
var (
	regMu       sync.Mutex
	running     = map[*Process]struct{}{}
	onInterrupt []func()
	installOnce sync.Once
)

func track(p *Process) {
	installOnce.Do(installSignalHandler)
	regMu.Lock()
	running[p] = struct{}{}
	regMu.Unlock()
}

func untrack(p *Process) {
	regMu.Lock()
	delete(running, p)
	regMu.Unlock()
}

// atInterrupt registers cleanup for resources that are not Processes (envtest's own).
func atInterrupt(f func()) {
	installOnce.Do(installSignalHandler)
	regMu.Lock()
	onInterrupt = append(onInterrupt, f)
	regMu.Unlock()
}

func installSignalHandler() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		regMu.Lock()
		procs := make([]*Process, 0, len(running))
		for p := range running {
			procs = append(procs, p)
		}
		funcs := onInterrupt
		regMu.Unlock()
		for _, p := range procs {
			p.Kill()
		}
		for _, f := range funcs {
			f()
		}
		fmt.Fprintf(os.Stderr, "testbed: %v: stopped %d processes\n", sig, len(procs))
		os.Exit(130)
	}()
}

// wrapWithDeathSignal makes a launcher script for binaries started by code we do not
// control (envtest's etcd and kube-apiserver), so they too die with the test process.
func wrapWithDeathSignal(dir, name, path string) (string, error) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		return path, nil
	}
	wrapper := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\nexec setpriv --pdeathsig KILL -- %q \"$@\"\n", path)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("writing launcher for %s: %w", name, err)
	}
	return wrapper, nil
}

// Serve runs handler on a free loopback port until the test ends and returns host:port: the
// test's own exporters and webhook receivers.
func Serve(t testing.TB, handler http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on loopback: %v", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}
