package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	// ProbeURL serves /healthz and /readyz, e.g. http://127.0.0.1:40123.
	ProbeURL string
	// Webhook is the alert webhook's host:port, when the flags enable it.
	Webhook string
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
	return StartPromgateAs(t, cp, PromgateOptions{Kubeconfig: kubeconfig, Args: extra})
}

// PromgateOptions says who a controller process runs as and with what flags.
type PromgateOptions struct {
	// Name names the process and its log, for several controllers on one bed; default
	// "promgate".
	Name string
	// Kubeconfig is what the controller authenticates with, given as $KUBECONFIG, where a
	// pod finds its in-cluster configuration: the flags stay the ones a manifest passes.
	Kubeconfig string
	// Args are the flags after "controller". A bind address on every interface (":8080",
	// as a Deployment passes it) becomes a free loopback port, so replicas and beds
	// sharing the machine do not clash; an address with a host is kept. The metrics and
	// probe addresses are added when Args do not set them.
	Args []string
	// Env is added to the controller's environment.
	Env []string
	// Unready waits only for /healthz: the test expects the controller not to be ready.
	Unready bool
}

// bindFlags are the controller's listening addresses StartPromgateAs places on loopback.
const (
	metricsFlag = "--metrics-bind-address"
	probeFlag   = "--health-probe-bind-address"
	webhookFlag = "--alert-webhook-bind-address"
)

// StartPromgateAs runs `promgate controller` as opts say and waits until /readyz answers
// (/healthz with opts.Unready); it stops with the test.
func StartPromgateAs(t testing.TB, cp *ControlPlane, opts PromgateOptions) *Promgate {
	t.Helper()
	ctx, cancel := startContext()
	defer cancel()
	name := opts.Name
	if name == "" {
		name = "promgate"
	}
	p := &Promgate{Process: &Process{
		Name: name, Path: PromgateBinary(t), LogPath: filepath.Join(cp.LogDir, name+".log"),
		Env: append([]string{"KUBECONFIG=" + opts.Kubeconfig}, opts.Env...),
	}}
	var addrs map[string]string
	var argErr error
	if _, err := startListening(ctx, p.Process, func(port int) []string {
		var args []string
		args, addrs, argErr = loopbackArgs(opts.Args, port)
		return append([]string{"controller"}, args...)
	}, func(int) error {
		if argErr != nil {
			return argErr
		}
		check := "/readyz"
		if opts.Unready {
			check = "/healthz"
		}
		return httpOK("http://" + addrs[probeFlag] + check)
	}); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p.MetricsURL = "http://" + addrs[metricsFlag] + "/metrics"
	p.ProbeURL = "http://" + addrs[probeFlag]
	p.Webhook = addrs[webhookFlag]
	t.Cleanup(p.Stop)
	return p
}

// Restart starts a stopped (or killed) controller again with the same flags and ports and
// waits until it is ready.
func (p *Promgate) Restart(ctx context.Context) error {
	if err := p.Start(); err != nil {
		return err
	}
	return waitReady(ctx, p.Process, func() error { return httpOK(p.ProbeURL + "/readyz") })
}

// loopbackArgs rewrites args as StartPromgateAs documents, the probe on probePort, and
// returns them with the address each listening flag ends up with.
func loopbackArgs(args []string, probePort int) ([]string, map[string]string, error) {
	addrs := map[string]string{}
	out := make([]string, 0, len(args)+2)
	for _, a := range args {
		flag, value, ok := strings.Cut(a, "=")
		if !ok || (flag != metricsFlag && flag != probeFlag && flag != webhookFlag) {
			out = append(out, a)
			continue
		}
		if strings.HasPrefix(value, ":") {
			value = "127.0.0.1:0"
		}
		addrs[flag] = value
	}
	if _, ok := addrs[metricsFlag]; !ok {
		addrs[metricsFlag] = "127.0.0.1:0"
	}
	addrs[probeFlag] = "127.0.0.1:" + strconv.Itoa(probePort)
	for _, flag := range []string{metricsFlag, probeFlag, webhookFlag} {
		v, ok := addrs[flag]
		if !ok {
			continue
		}
		if v == "127.0.0.1:0" {
			port, err := FreePort()
			if err != nil {
				return nil, nil, err
			}
			v = "127.0.0.1:" + strconv.Itoa(port)
			addrs[flag] = v
		}
		out = append(out, flag+"="+v)
	}
	return out, addrs, nil
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

// ControllerKubeconfig is a kubeconfig of the controller's user holding the generated
// ClusterRole and, when leaseNamespace is set, the leader election Role there: what a
// controller Deployment's ServiceAccount holds.
func ControllerKubeconfig(ctx context.Context, cp *ControlPlane, leaseNamespace string) (string, error) {
	kubeconfig, err := bindControllerRole(ctx, cp)
	if err != nil || leaseNamespace == "" {
		return kubeconfig, err
	}
	root, err := testbin.RepoRoot()
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "leader_election_role.yaml"))
	if err != nil {
		return "", err
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		return "", fmt.Errorf("parsing config/rbac/leader_election_role.yaml: %w", err)
	}
	role.Namespace = leaseNamespace
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: leaseNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: controllerUser}},
	}
	for _, obj := range []client.Object{&role, binding} {
		if err := cp.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	return kubeconfig, nil
}
