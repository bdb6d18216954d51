package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// Where the image keeps what the binary reads besides itself.
const (
	binaryPath = "promgate"
	certsPath  = "etc/ssl/certs/ca-certificates.crt"
	// zoneinfoPath is where Go's own distribution keeps the zone database; ZONEINFO points
	// the binary at it, as a stripped binary has no GOROOT to find it by.
	zoneinfoPath = "usr/local/go/lib/time/zoneinfo.zip"
	nonroot      = 65532
)

// options says what to build.
type options struct {
	// Output is the OCI image archive written.
	Output    string
	Platforms []v1.Platform
	// Version and Commit are stamped into the binary (promgate version) and the labels.
	Version, Commit string
	// Source is the repository URL of the labels.
	Source string
	// Module is the promgate checkout built.
	Module string
	// Created dates the image and every file in it.
	Created time.Time
}

// labels are the image's OCI annotations as config labels.
func (o options) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "promgate",
		"org.opencontainers.image.description": "Kubernetes releases gated on Prometheus",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Commit,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
}

func build(ctx context.Context, o options) error {
	if len(o.Platforms) == 0 {
		return fmt.Errorf("no platform to build")
	}
	goroot, err := goRoot(ctx)
	if err != nil {
		return err
	}
	base, err := baseLayer(o.Created, goroot)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "promgate-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var index v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		img, err := platformImage(ctx, o, p, base, filepath.Join(goroot, "bin", "go"), work)
		if err != nil {
			return err
		}
		index = mutate.AppendManifests(index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	dir := filepath.Join(work, "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the image layout: %w", err)
	}
	if err := lp.AppendIndex(index, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.Version})); err != nil {
		return fmt.Errorf("writing the image index: %w", err)
	}
	return archive(dir, o.Output, o.Created)
}

// platformImage builds the binary for p and the image around it.
func platformImage(ctx context.Context, o options, p v1.Platform, base v1.Layer, gocmd, work string) (v1.Image, error) {
	bin := filepath.Join(work, "promgate-"+p.OS+"-"+p.Architecture)
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", o.Version, o.Commit)
	cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, "./cmd/promgate")
	cmd.Dir = o.Module
	// Static: the image has no libc to link against.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building promgate for %s/%s: %w: %s", p.OS, p.Architecture, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var files layerFiles
	files.add(binaryPath, b, 0o755, 0)
	binLayer, err := files.layer(o.Created)
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Created:      v1.Time{Time: o.Created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
			Entrypoint: []string{"/" + binaryPath, "controller"},
			Env:        []string{"ZONEINFO=/" + zoneinfoPath},
			WorkingDir: "/",
			Labels:     o.labels(),
		},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "promgate image: CA certificates, time zone data, user nonroot"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "promgate image: /promgate " + o.Version}},
	)
	if err != nil {
		return nil, fmt.Errorf("assembling the %s/%s image: %w", p.OS, p.Architecture, err)
	}
	return img, nil
}

// baseLayer is what every platform shares, so its layer is stored once.
func baseLayer(created time.Time, goroot string) (v1.Layer, error) {
	var certs bytes.Buffer
	for root := range bundle.Roots() {
		// A PEM file cannot carry a root's distrust date: such a root is left out rather
		// than trusted for certificates it no longer vouches for.
		if root.Constraint != nil {
			continue
		}
		if err := pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, err
		}
	}
	zoneinfo, err := os.ReadFile(filepath.Join(goroot, "lib", "time", "zoneinfo.zip"))
	if err != nil {
		return nil, fmt.Errorf("reading Go's time zone database: %w", err)
	}
	var files layerFiles
	files.add(certsPath, certs.Bytes(), 0o644, 0)
	files.add(zoneinfoPath, zoneinfo, 0o644, 0)
	files.add("etc/passwd", []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)), 0o644, 0)
	files.add("etc/group", []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot)), 0o644, 0)
	files.dir("home/nonroot", 0o700, nonroot)
	files.dir("tmp", 0o1777, 0)
	return files.layer(created)
}

// layerFiles are the entries of one layer, written in the order added, parents first.
type layerFiles struct {
	entries []layerEntry
	dirs    map[string]bool
}

type layerEntry struct {
	hdr  tar.Header
	body []byte
}

func (l *layerFiles) parents(name string) {
	if l.dirs == nil {
		l.dirs = map[string]bool{}
	}
	dir := filepath.Dir(name)
	if dir == "." || l.dirs[dir] {
		return
	}
	l.parents(dir)
	l.dirs[dir] = true
	l.entries = append(l.entries, layerEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}})
}

func (l *layerFiles) add(name string, body []byte, mode int64, owner int) {
	l.parents(name)
	l.entries = append(l.entries, layerEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), Uid: owner, Gid: owner}, body: body})
}

func (l *layerFiles) dir(name string, mode int64, owner int) {
	l.parents(name)
	l.dirs[name] = true
	l.entries = append(l.entries, layerEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: owner, Gid: owner}})
}

// layer writes the entries as a gzipped OCI layer, every file dated created, so the same
// inputs give the same digest.
func (l *layerFiles) layer(created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range l.entries {
		hdr := e.hdr
		hdr.ModTime = created
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// archive tars the layout at dir into path: the oci-archive form skopeo and others read.
func archive(dir, path string, created time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	// WalkDir visits in lexical order: the archive does not depend on the file system.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		hdr := &tar.Header{Name: rel, Mode: 0o644, ModTime: created, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Size = int64(len(b))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// goRoot is the toolchain that builds the binary: its zone database goes with it.
func goRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("finding the Go toolchain: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
