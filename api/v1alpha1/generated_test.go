package v1alpha1_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/test/testbin"
)

// TestGeneratedFilesAreFresh regenerates deepcopy code and CRDs from a copy of the API with
// the pinned controller-gen and fails when the committed files differ.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds controller-gen")
	}
	ctx := context.Background()
	controllerGen, err := testbin.Path(ctx, "controller-gen", nil)
	require.NoError(t, err)
	root, err := testbin.RepoRoot()
	require.NoError(t, err)

	work := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		copyFile(t, filepath.Join(root, f), filepath.Join(work, f))
	}
	apiFiles, err := filepath.Glob(filepath.Join(root, "api", "v1alpha1", "*.go"))
	require.NoError(t, err)
	for _, f := range apiFiles {
		copyFile(t, f, filepath.Join(work, "api", "v1alpha1", filepath.Base(f)))
	}
	for _, args := range [][]string{
		{"object", "paths=./api/..."},
		{"crd:allowDangerousTypes=true", "paths=./api/...", "output:crd:artifacts:config=config/crd/bases"},
	} {
		cmd := exec.CommandContext(ctx, controllerGen, args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "controller-gen %v: %s", args, out)
	}

	// RBAC comes from markers on the controllers: generate it from the checkout itself
	// into the scratch folder.
	rbac := exec.CommandContext(ctx, controllerGen, "rbac:roleName=promgate-controller", "paths=./analysis/...", "paths=./providers/...", "paths=./rollout/...", "paths=./cmd/...",
		"output:rbac:artifacts:config="+filepath.Join(work, "config", "rbac"))
	rbac.Dir = root
	out, err := rbac.CombinedOutput()
	require.NoError(t, err, "controller-gen rbac: %s", out)

	fresh, err := filepath.Glob(filepath.Join(work, "config", "crd", "bases", "*.yaml"))
	require.NoError(t, err)
	committed, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	require.NoError(t, err)
	require.Equal(t, names(fresh), names(committed), "config/crd/bases has other files than controller-gen makes; run make generate")
	for _, f := range append(fresh, filepath.Join(work, "api", "v1alpha1", "zz_generated.deepcopy.go"), filepath.Join(work, "config", "rbac", "role.yaml")) {
		rel, err := filepath.Rel(work, f)
		require.NoError(t, err)
		want, err := os.ReadFile(f)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err, "%s is missing; run make generate", rel)
		if !bytes.Equal(want, got) {
			t.Errorf("%s is stale; run make generate", rel)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

func names(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
