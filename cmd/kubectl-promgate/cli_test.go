package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// plugin runs a command line that needs no cluster.
func plugin(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr safeBuffer
	a := &app{flags: newTestFlags(), stdout: &stdout, stderr: &stderr, connect: func() (client.WithWatch, error) {
		t.Fatal("no cluster is needed")
		return nil, nil
	}}
	code := a.run(context.Background(), args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// TestLintAndAnalyzeArePromgates: the plugin's lint and analyze are promgate's, flags,
// messages and exit codes included.
func TestLintAndAnalyzeArePromgates(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: promgate.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: up}
spec:
  metrics:
  - name: up
    successCondition: result[0] == 1
    provider: {prometheus: {query: up}}
`), 0o644))
	r := plugin(t, "lint", "-f", file)
	assert.Zero(t, r.code, r.stderr)
	assert.Equal(t, file+": AnalysisTemplate/up: ok (1 metrics)\n", r.stdout)

	r = plugin(t, "lint")
	assert.Equal(t, 4, r.code)
	assert.Equal(t, "kubectl promgate lint: no file given (-f FILE)\n", r.stderr)

	r = plugin(t, "analyze", "-f", file, "--arg", "x=1")
	assert.Equal(t, 4, r.code)
	assert.Equal(t, "kubectl promgate analyze: "+file+": AnalysisTemplate/up: --arg x: the template declares no such arg\n", r.stderr)
}

func TestVersion(t *testing.T) {
	r := plugin(t, "version")
	assert.Zero(t, r.code)
	assert.Regexp(t, `^kubectl-promgate \S+ \(commit \S+, go1\.\d+\.\d+\)\n$`, r.stdout)
}
