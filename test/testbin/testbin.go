// Package testbin builds the test bed's third-party binaries (etcd, the Kubernetes control
// plane, kwok, Prometheus, Alertmanager, controller-gen, helm) from the Go module proxy, pinned by
// the tools modules under test/tools, into a cache keyed by version so a second run builds
// nothing.
package testbin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Tool is a pinned upstream module and the binaries built from it.
type Tool struct {
	// Name names the tool's cache folder and build lock.
	Name string
	// Dir is the tools module's folder under test/tools.
	Dir string
	// Module is the pinned module whose version keys the cache.
	Module string
	// Binaries maps each binary name to its package path.
	Binaries map[string]string
	// Tags and LDFlags are passed to go build; they are part of the cache key.
	Tags    string
	LDFlags string
}

const k8sVersion = "v1.36.3"

// helmVersion is the helm.sh/helm/v3 version test/tools/helm pins, stamped into the binary.
const helmVersion = "v3.22.0"

// gcFlags leaves out the debug information nobody reads in a test bed binary (the linker
// strips it anyway with -s -w): compiling every package without it makes a first build
// about an eighth faster.
const gcFlags = "all=-dwarf=false"

// bedModule pins every test bed server in one module, so they agree on the versions of
// what they share (the Kubernetes client libraries, gRPC, OpenTelemetry, Prometheus'
// libraries) and the Go build cache compiles each shared package once: a first build
// takes minutes less than with a module per tool.
const bedModule = "bed"

// Tools lists every tool the test bed uses.
var Tools = []Tool{
	// The API server compiles most of what etcd shares with it, so it goes first.
	{
		Name: "kubernetes", Dir: bedModule, Module: "k8s.io/kubernetes",
		Binaries: map[string]string{
			"kube-apiserver":          "k8s.io/kubernetes/cmd/kube-apiserver",
			"kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
			"kube-scheduler":          "k8s.io/kubernetes/cmd/kube-scheduler",
			"kubectl":                 "k8s.io/kubernetes/cmd/kubectl",
		},
		// Without a version the binaries report v0.0.0-master, which kubectl warns about as skew.
		LDFlags: "-X k8s.io/component-base/version.gitVersion=" + k8sVersion +
			" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36" +
			" -X k8s.io/client-go/pkg/version.gitVersion=" + k8sVersion,
	},
	{Name: "etcd", Dir: bedModule, Module: "go.etcd.io/etcd/server/v3", Binaries: map[string]string{"etcd": "go.etcd.io/etcd/server/v3"}},
	{Name: "kwok", Dir: bedModule, Module: "sigs.k8s.io/kwok", Binaries: map[string]string{"kwok": "sigs.k8s.io/kwok/cmd/kwok"}},
	// remove_all_sd drops the cloud service discoveries: the bed scrapes static loopback targets.
	{Name: "prometheus", Dir: bedModule, Module: "github.com/prometheus/prometheus", Binaries: map[string]string{"prometheus": "github.com/prometheus/prometheus/cmd/prometheus"}, Tags: "remove_all_sd"},
	{Name: "alertmanager", Dir: bedModule, Module: "github.com/prometheus/alertmanager", Binaries: map[string]string{"alertmanager": "github.com/prometheus/alertmanager/cmd/alertmanager"}},
	// controller-gen needs newer Kubernetes libraries than the bed's servers: its own module.
	{Name: "controller-gen", Dir: "controller-gen", Module: "sigs.k8s.io/controller-tools", Binaries: map[string]string{"controller-gen": "sigs.k8s.io/controller-tools/cmd/controller-gen"}},
	// helm renders the chart in the install tests; its own module keeps its Kubernetes
	// libraries (v0.37) out of promgate's go.mod. Without the version stamps it reports
	// v1.20 as the cluster's version and refuses a chart that needs more.
	{
		Name: "helm", Dir: "helm", Module: "helm.sh/helm/v3", Binaries: map[string]string{"helm": "helm.sh/helm/v3/cmd/helm"},
		LDFlags: "-X helm.sh/helm/v3/internal/version.version=" + helmVersion +
			" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37" +
			" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
	},
}

// EnvVar names the variable that points at an existing binary instead of building one,
// e.g. PROMGATE_KUBE_APISERVER for kube-apiserver.
func EnvVar(binary string) string {
	return "PROMGATE_" + strings.ToUpper(strings.ReplaceAll(binary, "-", "_"))
}

var (
	mu       sync.Mutex
	verified = map[string]string{}
)

// Path returns the binary's path, building its tool on first use. Progress lines go to
// progress, which may be nil.
func Path(ctx context.Context, binary string, progress io.Writer) (string, error) {
	if p := os.Getenv(EnvVar(binary)); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvVar(binary), p, err)
		}
		return p, nil
	}
	tool, ok := toolOf(binary)
	if !ok {
		return "", fmt.Errorf("no tool provides the binary %q", binary)
	}
	dir, err := Ensure(ctx, tool, progress)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, binary), nil
}

func toolOf(binary string) (Tool, bool) {
	for _, t := range Tools {
		if _, ok := t.Binaries[binary]; ok {
			return t, true
		}
	}
	return Tool{}, false
}

// Ensure builds tool into its cache folder unless a verified build is there, and returns
// the folder. Concurrent test processes share one build through a file lock.
func Ensure(ctx context.Context, tool Tool, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	src, err := toolsDir(tool.Dir)
	if err != nil {
		return "", err
	}
	version, key, err := cacheKey(src, tool)
	if err != nil {
		return "", err
	}
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%s-%s", tool.Name, version, key))

	mu.Lock()
	defer mu.Unlock()
	if verified[dir] != "" {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating tool cache %s: %w", root, err)
	}
	unlock, err := lockFile(filepath.Join(root, tool.Name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	if err := verify(dir, tool); err == nil {
		verified[dir] = version
		return dir, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(progress, "testbin: %s %s in %s is damaged (%v); rebuilding\n", tool.Name, version, dir, err)
	}
	if err := build(ctx, src, dir, version, tool, progress); err != nil {
		return "", err
	}
	if err := verify(dir, tool); err != nil {
		return "", fmt.Errorf("verifying fresh build of %s %s: %w", tool.Name, version, err)
	}
	verified[dir] = version
	return dir, nil
}

// CacheRoot is where built tools live: $PROMGATE_TOOLS_CACHE, else the user cache folder.
func CacheRoot() (string, error) {
	if d := os.Getenv("PROMGATE_TOOLS_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache folder (set PROMGATE_TOOLS_CACHE): %w", err)
	}
	return filepath.Join(d, "promgate", "tools"), nil
}

// RepoRoot is the promgate checkout this package was compiled from.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the testbin source file")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("promgate checkout not found at %s: %w", root, err)
	}
	return root, nil
}

func toolsDir(name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "tools", name), nil
}

// cacheKey reads the pinned version from the tools module and hashes everything that
// changes the build: go.mod, go.sum, the Go version, tags, compiler and linker flags.
func cacheKey(src string, tool Tool) (version, key string, err error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", "", fmt.Errorf("reading tools module %s: %w", tool.Dir, err)
		}
		h.Write(b)
		if f == "go.mod" {
			version = requiredVersion(b, tool.Module)
		}
	}
	if version == "" {
		return "", "", fmt.Errorf("tools module %s does not require %s", tool.Dir, tool.Module)
	}
	fmt.Fprintf(h, "%s|%s|%s|%s", runtime.Version(), tool.Tags, gcFlags, tool.LDFlags)
	return version, hex.EncodeToString(h.Sum(nil))[:12], nil
}

func requiredVersion(gomod []byte, module string) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	return ""
}

const sumsFile = "SHA256SUMS"

// verify checks every binary against the checksums written after the build, so a
// truncated or overwritten binary is rebuilt rather than failing obscurely at start.
func verify(dir string, tool Tool) error {
	sums, err := os.ReadFile(filepath.Join(dir, sumsFile))
	if err != nil {
		return err
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			want[f[1]] = f[0]
		}
	}
	for name := range tool.Binaries {
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if want[name] != got {
			return fmt.Errorf("checksum of %s does not match %s", name, sumsFile)
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func build(ctx context.Context, src, dir, version string, tool Tool, progress io.Writer) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clearing %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	logPath := dir + ".build.log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating build log: %w", err)
	}
	defer logFile.Close()

	for _, name := range slices.Sorted(maps.Keys(tool.Binaries)) {
		fmt.Fprintf(progress, "testbin: building %s %s from the Go module proxy (first time only; log %s)\n", name, version, logPath)
		args := []string{"build", "-gcflags", gcFlags, "-ldflags", strings.TrimSpace("-s -w " + tool.LDFlags), "-o", filepath.Join(tmp, name)}
		if tool.Tags != "" {
			args = append(args, "-tags", tool.Tags)
		}
		args = append(args, tool.Binaries[name])
		cmd := exec.CommandContext(ctx, goBinary(), args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s %s failed (%v); see %s", name, version, err, logPath)
		}
	}
	var sums strings.Builder
	for _, name := range slices.Sorted(maps.Keys(tool.Binaries)) {
		s, err := fileSHA256(filepath.Join(tmp, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s %s\n", s, name)
	}
	if err := os.WriteFile(filepath.Join(tmp, sumsFile), []byte(sums.String()), 0o644); err != nil {
		return fmt.Errorf("writing checksums: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("installing %s: %w", dir, err)
	}
	fmt.Fprintf(progress, "testbin: %s %s ready in %s\n", tool.Name, version, dir)
	return nil
}

// moduleDir is the folder of module in the module cache, as resolved from the tools or
// main module at dir.
func moduleDir(ctx context.Context, dir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, goBinary(), "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("locating module %s: %v: %s", module, err, out)
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		// go list leaves Dir empty until the module is downloaded.
		dl := exec.CommandContext(ctx, goBinary(), "mod", "download", module)
		dl.Dir = dir
		if out, err := dl.CombinedOutput(); err != nil {
			return "", fmt.Errorf("downloading module %s: %v: %s", module, err, out)
		}
		return moduleDir(ctx, dir, module)
	}
	return d, nil
}

// MainModuleDir locates a dependency of the promgate module itself (e.g. the Gateway API
// CRDs shipped in sigs.k8s.io/gateway-api).
func MainModuleDir(ctx context.Context, module string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return moduleDir(ctx, root, module)
}

// goBinary is the go command that runs the tests: the toolchain the tools are pinned for.
func goBinary() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go"); err == nil && fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lockFile serialises builds across processes: go test runs packages in parallel and each
// may ask for the same tool.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// KwokStages returns a kwok configuration file with the upstream stages of the pinned kwok
// module: node initialisation, node heartbeat (without it the node lifecycle controller
// marks the node NotReady after about 40 s) and the pod lifecycle.
func KwokStages(ctx context.Context) (string, error) {
	src, err := toolsDir(bedModule)
	if err != nil {
		return "", err
	}
	modDir, err := moduleDir(ctx, src, "sigs.k8s.io/kwok")
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	for _, f := range []string{
		"kustomize/stage/node/fast/node-initialize.yaml",
		"kustomize/stage/node/heartbeat/node-heartbeat.yaml",
		"kustomize/stage/pod/fast/pod-ready.yaml",
		"kustomize/stage/pod/fast/pod-complete.yaml",
		"kustomize/stage/pod/fast/pod-delete.yaml",
	} {
		b, err := os.ReadFile(filepath.Join(modDir, f))
		if err != nil {
			return "", fmt.Errorf("reading kwok stage: %w", err)
		}
		out.WriteString("---\n")
		out.Write(b)
		out.WriteString("\n")
	}
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	sum := sha256.Sum256(out.Bytes())
	path := filepath.Join(root, "kwok-stages-"+hex.EncodeToString(sum[:6])+".yaml")
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, out.Bytes()) {
		return path, nil
	}
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("writing kwok stages: %w", err)
	}
	return path, os.Rename(tmp, path)
}
