package testbin

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCacheRebuildsMissingAndCorrupt builds a small tool into a private cache, then damages
// the cache both ways a user meets: a deleted folder and a truncated binary.
func TestCacheRebuildsMissingAndCorrupt(t *testing.T) {
	t.Setenv("PROMGATE_TOOLS_CACHE", t.TempDir())
	ctx := context.Background()
	tool, ok := toolOf("controller-gen")
	require.True(t, ok)
	forget := func() {
		mu.Lock()
		clear(verified)
		mu.Unlock()
	}

	dir, err := Ensure(ctx, tool, nil)
	require.NoError(t, err)
	bin := filepath.Join(dir, "controller-gen")
	require.NoError(t, verify(dir, tool))
	first, err := os.Stat(bin)
	require.NoError(t, err)

	forget()
	again, err := Ensure(ctx, tool, nil)
	require.NoError(t, err)
	require.Equal(t, dir, again, "the cache is keyed by version, not by run")
	second, err := os.Stat(bin)
	require.NoError(t, err)
	require.Equal(t, first.ModTime(), second.ModTime(), "a verified cache builds nothing")

	require.NoError(t, os.Truncate(bin, 1024))
	require.Error(t, verify(dir, tool))
	forget()
	_, err = Ensure(ctx, tool, nil)
	require.NoError(t, err)
	require.NoError(t, verify(dir, tool), "a corrupt binary is detected and rebuilt")

	require.NoError(t, os.RemoveAll(dir))
	forget()
	_, err = Ensure(ctx, tool, nil)
	require.NoError(t, err)
	require.NoError(t, verify(dir, tool), "a missing cache is rebuilt")
}

func TestEnvVarOverridesTheCache(t *testing.T) {
	t.Setenv("PROMGATE_TOOLS_CACHE", t.TempDir())
	fake := filepath.Join(t.TempDir(), "kube-apiserver")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv(EnvVar("kube-apiserver"), fake)
	require.Equal(t, "PROMGATE_KUBE_APISERVER", EnvVar("kube-apiserver"))

	p, err := Path(context.Background(), "kube-apiserver", nil)
	require.NoError(t, err)
	require.Equal(t, fake, p)

	t.Setenv(EnvVar("kube-apiserver"), filepath.Join(t.TempDir(), "missing"))
	_, err = Path(context.Background(), "kube-apiserver", nil)
	require.ErrorContains(t, err, "PROMGATE_KUBE_APISERVER")
}

func TestBuildFailureNamesBinaryVersionAndLog(t *testing.T) {
	t.Setenv("PROMGATE_TOOLS_CACHE", t.TempDir())
	tool, ok := toolOf("controller-gen")
	require.True(t, ok)
	tool.Binaries = map[string]string{"controller-gen": "sigs.k8s.io/controller-tools/cmd/no-such-command"}
	_, err := Ensure(context.Background(), tool, nil)
	require.ErrorContains(t, err, "building controller-gen v0.23.0 failed")
	require.ErrorContains(t, err, ".build.log")
}
