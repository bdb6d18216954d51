// Command image builds promgate's container image with no Docker daemon (as ko does): an
// OCI image archive, a tar of an OCI image layout whose index holds one image per
// platform. Each image is two layers on nothing: CA certificates, time zone data and the
// nonroot user, then the static promgate binary; it runs as user 65532 with the
// entrypoint "/promgate controller".
//
//	go run ./build/image -o bin/promgate-image.tar -platforms linux/amd64,linux/arm64 \
//	    -version v0.1.0 -commit "$(git rev-parse HEAD)" -created "$(git log -1 --format=%cI)"
//
// Load it with `skopeo copy --all oci-archive:bin/promgate-image.tar docker://REGISTRY/promgate:TAG`
// or unpack it and `crane push --index DIR REGISTRY/promgate:TAG`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var (
		output    = fs.String("o", "bin/promgate-image.tar", "the OCI image archive to write")
		platforms = fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated OS/ARCH list, one image each")
		version   = fs.String("version", "dev", "version stamped into the binary and the image's labels")
		commit    = fs.String("commit", "unknown", "source commit stamped into the binary and the labels")
		source    = fs.String("source", "https://github.com/promgate/promgate", "the source repository, for the labels")
		created   = fs.String("created", "", "creation time (RFC 3339) of the image and its files; default: the Unix epoch, so a build is reproducible")
		module    = fs.String("C", ".", "the promgate checkout to build")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := options{Output: *output, Version: *version, Commit: *commit, Source: *source, Module: *module, Created: time.Unix(0, 0).UTC()}
	if *created != "" {
		t, err := time.Parse(time.RFC3339, *created)
		if err != nil {
			return fmt.Errorf("-created: %w", err)
		}
		o.Created = t.UTC()
	}
	for p := range strings.SplitSeq(*platforms, ",") {
		goos, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos == "" || arch == "" {
			return fmt.Errorf("-platforms: %q is not OS/ARCH", p)
		}
		o.Platforms = append(o.Platforms, v1.Platform{OS: goos, Architecture: arch})
	}
	return build(ctx, o)
}
