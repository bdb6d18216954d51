package analyzecmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLint: whatever a file holds, lint answers with an exit code it documents (never a
// panic, never an error of its own), and every line it prints names the file, so each
// problem reads on its own.
func FuzzLint(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "promgate", "testdata", "argo", "*.yaml"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		twoTemplates,
		"",
		"# only a comment\n",
		"kind: AnalysisTemplate\napiVersion: promgate.io/v1alpha1\nspec: {metrics: [{name: a, name: b}]}\n",
		"kind: AnalysisTemplate\napiVersion: promgate.io/v1alpha1\nmetadata: {name: x}\nspec: {metrics: [{name: m, interval: 1q, count: -1, successCondition: 'result[0] <', provider: {prometheus: {query: 'rate(x[5m'}}}]}\n",
		"kind: ClusterAnalysisTemplate\napiVersion: promgate.io/v1alpha1\nmetadata: {name: x}\nspec: {templates: [{name: x}], metrics: 3}\n---\n: [\n",
		"kind: AnalysisTemplate\napiVersion: argoproj.io/v1alpha1\nmetadata: {name: x}\nspec: {metrics: [{name: m, provider: {judge: {metrics: [{name: j, canary: up, baseline: up, direction: sideways}]}}}]}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := Lint("promgate", []string{path}, &stdout, &stderr)
		switch code {
		case ExitSuccessful, ExitFailed, ExitInvalidInput:
		default:
			t.Fatalf("exit code %d for\n%s\nstdout: %s\nstderr: %s", code, content, stdout.String(), stderr.String())
		}
		for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
			if !strings.HasPrefix(line, path+": ") {
				t.Fatalf("a line that does not name the file: %q", line)
			}
		}
		if code == ExitSuccessful && !strings.Contains(stdout.String(), ": ok (") {
			t.Fatalf("valid without saying so: %q", stdout.String())
		}
	})
}
