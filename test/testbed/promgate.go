package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/test/testbin"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// PromgateBinary builds cmd/promgate once per test process and returns its path;
// $PROMGATE_BINARY points at an existing build instead (e.g. to benchmark a release).
func PromgateBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("PROMGATE_BINARY"); p != "" {
			buildPath = p
			return
		}
		root, err := testbin.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		pruneBuilds(time.Hour)
		dir, err := os.MkdirTemp("", "promgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "promgate")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/promgate")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building cmd/promgate: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// pruneBuilds removes earlier test processes' builds: a test process cannot remove its own
// when it ends (tests share it until the process exits), so the next one does, once they
// are older than any test run.
func pruneBuilds(age time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "promgate-bin-*"))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > age {
			_ = os.RemoveAll(d)
		}
	}
}

// Promgate is the promgate controller running as its own process, as in production.
type Promgate struct {
	*Process
	// MetricsURL serves the controller's /metrics.
	MetricsURL string
}

// controllerUser is who the controller runs as: bound to config/rbac/role.yaml and nothing
// else, so every test of the controller process also proves the role is enough.
const controllerUser = "promgate-controller"

// StartPromgate runs `promgate controller` against the control plane, as a user holding only
// the generated ClusterRole, with extra flags, and waits until it is ready; it stops with
// the test.
func StartPromgate(t testing.TB, cp *ControlPlane, extra ...string) *Promgate {
	t.Helper()
	ctx, cancel := startContext()
	defer cancel()
	kubeconfig, err := bindControllerRole(ctx, cp)
	if err != nil {
		t.Fatalf("granting the controller its role: %v", err)
	}
	metricsPort, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &Promgate{Process: &Process{Name: "promgate", Path: PromgateBinary(t), LogPath: filepath.Join(cp.LogDir, "promgate.log")}}
	if _, err := startListening(ctx, p.Process, func(port int) []string {
		return append([]string{
			"controller",
			"--kubeconfig=" + kubeconfig,
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(port),
		}, extra...)
	}, func(port int) error { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)) }); err != nil {
		t.Fatalf("starting promgate: %v", err)
	}
	p.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	t.Cleanup(p.Stop)
	return p
}

func bindControllerRole(ctx context.Context, cp *ControlPlane) (string, error) {
	root, err := testbin.RepoRoot()
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		return "", err
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		return "", fmt.Errorf("parsing config/rbac/role.yaml: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: controllerUser}},
	}
	for _, obj := range []client.Object{&role, binding} {
		if err := cp.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	return cp.UserKubeconfig(controllerUser)
}
