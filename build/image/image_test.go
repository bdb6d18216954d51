package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImage builds the archive for this machine's platform, reads it back as a registry
// client would, checks the image's configuration and files, and runs the binary from its
// layer.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary runs on linux only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	created := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	archivePath := filepath.Join(t.TempDir(), "promgate-image.tar")
	require.NoError(t, build(ctx, options{
		Output: archivePath, Platforms: []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}},
		Version: "v9.8.7-test", Commit: "0123abc", Source: "https://example.com/promgate", Module: "../..", Created: created,
	}))

	dir := t.TempDir()
	untar(t, archivePath, dir)
	top, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	topManifest, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, topManifest.Manifests, 1)
	ref := topManifest.Manifests[0]
	assert.Equal(t, types.OCIImageIndex, ref.MediaType)
	assert.Equal(t, "v9.8.7-test", ref.Annotations["org.opencontainers.image.ref.name"])
	index, err := top.ImageIndex(ref.Digest)
	require.NoError(t, err)
	im, err := index.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	require.Equal(t, &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, im.Manifests[0].Platform)
	img, err := index.Image(im.Manifests[0].Digest)
	require.NoError(t, err)

	mt, err := img.MediaType()
	require.NoError(t, err)
	assert.Equal(t, types.OCIManifestSchema1, mt)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", cfg.Config.User)
	assert.Equal(t, []string{"/promgate", "controller"}, cfg.Config.Entrypoint)
	assert.Equal(t, []string{"ZONEINFO=/usr/local/go/lib/time/zoneinfo.zip"}, cfg.Config.Env)
	assert.Equal(t, map[string]string{
		"org.opencontainers.image.title":       "promgate",
		"org.opencontainers.image.description": "Kubernetes releases gated on Prometheus",
		"org.opencontainers.image.version":     "v9.8.7-test",
		"org.opencontainers.image.revision":    "0123abc",
		"org.opencontainers.image.source":      "https://example.com/promgate",
		"org.opencontainers.image.created":     "2026-11-22T01:00:00Z",
	}, cfg.Config.Labels)
	assert.Equal(t, runtime.GOARCH, cfg.Architecture)
	assert.True(t, cfg.Created.Equal(created))
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 2, "the shared base, then the binary")
	for _, l := range layers {
		lmt, err := l.MediaType()
		require.NoError(t, err)
		assert.Equal(t, types.OCILayer, lmt)
	}

	files := flatten(t, img)
	bin := filepath.Join(t.TempDir(), "promgate")
	require.NoError(t, os.WriteFile(bin, files["promgate"].body, 0o755))
	assert.Equal(t, int64(0o755), files["promgate"].hdr.Mode)
	assertStatic(t, bin)
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "promgate v9.8.7-test\ncommit 0123abc\n"+runtime.Version()+" linux/"+runtime.GOARCH+"\n", string(out))

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(files["etc/ssl/certs/ca-certificates.crt"].body), "the CA bundle is PEM")
	assert.Greater(t, strings.Count(string(files["etc/ssl/certs/ca-certificates.crt"].body), "BEGIN CERTIFICATE"), 100)
	// The lookup a release window's timeZone makes, in the image's zone data alone.
	zr, err := zip.NewReader(bytes.NewReader(files["usr/local/go/lib/time/zoneinfo.zip"].body), int64(len(files["usr/local/go/lib/time/zoneinfo.zip"].body)))
	require.NoError(t, err)
	zf, err := zr.Open("Europe/Paris")
	require.NoError(t, err)
	tz, err := io.ReadAll(zf)
	require.NoError(t, err)
	paris, err := time.LoadLocationFromTZData("Europe/Paris", tz)
	require.NoError(t, err)
	_, offset := time.Date(2026, 7, 1, 12, 0, 0, 0, paris).Zone()
	assert.Equal(t, 2*3600, offset, "summer time in Paris")
	assert.Contains(t, string(files["etc/passwd"].body), "nonroot:x:65532:65532:")
	assert.Equal(t, 65532, files["home/nonroot"].hdr.Uid)
	for name, f := range files {
		assert.True(t, f.hdr.ModTime.Equal(created), "%s is dated by -created, so builds are reproducible", name)
	}
}

type file struct {
	hdr  *tar.Header
	body []byte
}

// flatten reads the image's file system, its layers applied in order.
func flatten(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[strings.TrimSuffix(hdr.Name, "/")] = file{hdr: hdr, body: body}
	}
}

func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err)
		target := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			require.NoError(t, os.MkdirAll(target, 0o755))
			continue
		}
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(target, b, 0o644))
	}
}

// assertStatic checks the binary asks for no dynamic loader: the image has no libc.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamically linked binary")
	}
}

// TestDockerfileMatches keeps the Dockerfile's image the one this builder makes: the same
// user, entrypoint, zone data and labels.
func TestDockerfileMatches(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	df := string(b)
	for _, want := range []string{
		"FROM scratch",
		"USER 65532:65532",
		`ENTRYPOINT ["/promgate", "controller"]`,
		"ENV ZONEINFO=/" + zoneinfoPath,
		"/" + zoneinfoPath + " /" + zoneinfoPath,
		"/etc/ssl/certs/ca-certificates.crt /" + certsPath,
		"CGO_ENABLED=0",
		"-X main.version=$VERSION -X main.commit=$COMMIT",
	} {
		assert.Contains(t, df, want)
	}
	for label := range (options{}).labels() {
		if label != "org.opencontainers.image.created" {
			assert.Contains(t, df, label+"=", "the Dockerfile sets label %s", label)
		}
	}
}
