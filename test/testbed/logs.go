// Package testbed runs the simulated cluster every end-to-end test, benchmark and the demo
// use: envtest's etcd and kube-apiserver, the real kube-controller-manager and scheduler,
// kwok's simulated nodes and pods, Prometheus and Alertmanager, all on loopback.
package testbed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	logDirsMu sync.Mutex
	logDirs   = map[testing.TB]string{}
)

// LogDir is the test's log folder: one file per process. It is removed when the test
// passes; when it fails the last lines of every log are printed and the folder is kept.
func LogDir(t testing.TB) string {
	logDirsMu.Lock()
	defer logDirsMu.Unlock()
	if d, ok := logDirs[t]; ok {
		return d
	}
	base := os.Getenv("PROMGATE_TEST_LOGS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "promgate-test-logs")
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatalf("creating log folder: %v", err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	dir, err := os.MkdirTemp(base, name+"-"+time.Now().Format("150405")+"-")
	if err != nil {
		t.Fatalf("creating log folder: %v", err)
	}
	logDirs[t] = dir
	t.Cleanup(func() {
		logDirsMu.Lock()
		delete(logDirs, t)
		logDirsMu.Unlock()
		if t.Failed() || os.Getenv("PROMGATE_KEEP_LOGS") != "" {
			t.Logf("test bed logs kept in %s\n%s", dir, tails(dir, 40))
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// tails returns the last n lines of every log in dir.
func tails(dir string, n int) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > n {
				lines = lines[1:]
			}
		}
		fh.Close()
		fmt.Fprintf(&b, "----- %s (last %d lines)\n%s\n", filepath.Base(f), len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// startContext bounds how long a component may take to become ready; the first run after
// a tool build is slower (cold page cache), hence the margin.
func startContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}
