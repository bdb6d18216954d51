package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	promgatev1alpha1 "github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbin"
)

// Scheme knows the built-in kinds, promgate's, the CRD kind and the Gateway API's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, promgatev1alpha1.AddToScheme, apiextensionsv1.AddToScheme, gatewayv1.Install,
	} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("building the test scheme: %v", err))
		}
	}
	return s
}

// ControlPlane is etcd and kube-apiserver with promgate's, the Gateway API's and (a
// stand-in of) Istio's networking CRDs installed: enough to exercise admission and
// validation.
type ControlPlane struct {
	// Config authenticates as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client with Scheme().
	Client client.Client
	// Clientset is client-go's typed client.
	Clientset kubernetes.Interface
	// Kubeconfig is an admin kubeconfig file for the binaries the bed starts and for kubectl.
	Kubeconfig string
	// Kubectl is the path of the kubectl binary built with the control plane.
	Kubectl string
	// LogDir holds every process's log.
	LogDir string

	env *envtest.Environment
}

// ClusterOptions tune a bed's control plane.
type ClusterOptions struct {
	// APIServerFlags are added to kube-apiserver's, e.g. {"watch-cache": "false"}.
	APIServerFlags map[string]string
}

// StartControlPlane starts etcd and kube-apiserver for the test and stops them when it ends.
func StartControlPlane(t testing.TB) *ControlPlane {
	t.Helper()
	return StartControlPlaneWith(t, ClusterOptions{})
}

// StartControlPlaneWith is StartControlPlane with opts.
func StartControlPlaneWith(t testing.TB, opts ClusterOptions) *ControlPlane {
	t.Helper()
	cp, err := startControlPlane(t, opts)
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	return cp
}

func startControlPlane(t testing.TB, opts ClusterOptions) (*ControlPlane, error) {
	ctx, cancel := startContext()
	defer cancel()
	logDir := LogDir(t)
	progress := testWriter{t}

	bins := map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		p, err := testbin.Path(ctx, name, progress)
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	root, err := testbin.RepoRoot()
	if err != nil {
		return nil, err
	}
	gatewayDir, err := testbin.MainModuleDir(ctx, "sigs.k8s.io/gateway-api")
	if err != nil {
		return nil, err
	}
	launchers := filepath.Join(logDir, "bin")
	if err := os.MkdirAll(launchers, 0o755); err != nil {
		return nil, fmt.Errorf("creating launcher folder: %w", err)
	}
	etcdPath, err := wrapWithDeathSignal(launchers, "etcd", bins["etcd"])
	if err != nil {
		return nil, err
	}
	apiserverPath, err := wrapWithDeathSignal(launchers, "kube-apiserver", bins["kube-apiserver"])
	if err != nil {
		return nil, err
	}
	etcdLog, err := os.Create(filepath.Join(logDir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	apiLog, err := os.Create(filepath.Join(logDir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		Scheme: Scheme(),
		// The Istio CRDs are a structural stand-in of our own (see the file): Istio's
		// modules would bring a large dependency for two kinds the bed only stores.
		CRDDirectoryPaths: []string{
			filepath.Join(root, "config", "crd", "bases"), filepath.Join(gatewayDir, "config", "crd", "standard"),
			filepath.Join(root, "test", "testbed", "crds", "istio"),
		},
		ErrorIfCRDPathMissing: true,
		ControlPlane: envtest.ControlPlane{
			Etcd:        &envtest.Etcd{Path: etcdPath, Out: etcdLog, Err: etcdLog},
			APIServer:   &envtest.APIServer{Path: apiserverPath, Out: apiLog, Err: apiLog},
			KubectlPath: bins["kubectl"],
		},
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	for k, v := range opts.APIServerFlags {
		env.ControlPlane.APIServer.Configure().Set(k, v)
	}
	stop := func() {
		_ = env.Stop()
		etcdLog.Close()
		apiLog.Close()
	}
	atInterrupt(stop)
	if _, err := env.Start(); err != nil {
		stop()
		return nil, fmt.Errorf("envtest with etcd and kube-apiserver %s (logs %s): %w", "v1.36.3", logDir, err)
	}
	t.Cleanup(stop)

	admin, err := env.AddUser(envtest.User{Name: "promgate-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(logDir, "admin.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	cfg := admin.Config()
	cfg.QPS, cfg.Burst = 200, 400
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the clientset: %w", err)
	}
	return &ControlPlane{Config: cfg, Client: c, Clientset: cs, Kubeconfig: kubeconfigPath, Kubectl: bins["kubectl"], LogDir: logDir, env: env}, nil
}

// UserKubeconfig writes a kubeconfig for a user authenticated by client certificate, with
// only the permissions RBAC grants it.
func (cp *ControlPlane) UserKubeconfig(name string, groups ...string) (string, error) {
	u, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", name, err)
	}
	b, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering kubeconfig of %s: %w", name, err)
	}
	path := filepath.Join(cp.LogDir, name+".kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as the ServiceAccount
// namespace/name with a token from the TokenRequest API, as a pod's projected token does:
// a process using it has exactly the permissions RBAC grants the ServiceAccount.
func (cp *ControlPlane) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) (string, error) {
	tr, err := cp.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	user := "system:serviceaccount:" + namespace + ":" + name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bed"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.Config.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["bed"] = &clientcmdapi.Context{Cluster: "bed", AuthInfo: user, Namespace: namespace}
	cfg.CurrentContext = "bed"
	path := filepath.Join(cp.LogDir, "sa-"+namespace+"-"+name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing the kubeconfig of %s: %w", user, err)
	}
	return path, nil
}

// Cluster is a control plane with the Deployment, ReplicaSet and every other built-in
// controller running, a scheduler, and a kwok node whose pods become Ready.
type Cluster struct {
	*ControlPlane
	ControllerManager *Process
	Scheduler         *Process
	Kwok              *Process
	// NodeName is the simulated node pods are scheduled to.
	NodeName string
}

// StartCluster starts the whole simulated cluster for the test and tears it down after.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith is StartCluster with opts.
func StartClusterWith(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	cp := StartControlPlaneWith(t, opts)
	c, err := startCluster(t, cp)
	if err != nil {
		t.Fatalf("starting the simulated cluster: %v", err)
	}
	return c
}

func startCluster(t testing.TB, cp *ControlPlane) (*Cluster, error) {
	ctx, cancel := startContext()
	defer cancel()
	progress := testWriter{t}
	c := &Cluster{ControlPlane: cp, NodeName: "kwok-node-0"}

	kcm, err := testbin.Path(ctx, "kube-controller-manager", progress)
	if err != nil {
		return nil, err
	}
	c.ControllerManager = &Process{Name: "kube-controller-manager", Path: kcm, LogPath: filepath.Join(cp.LogDir, "kube-controller-manager.log")}
	if _, err := startListening(ctx, c.ControllerManager, func(port int) []string {
		return []string{
			"--kubeconfig=" + cp.Kubeconfig,
			"--authentication-kubeconfig=" + cp.Kubeconfig,
			"--authorization-kubeconfig=" + cp.Kubeconfig,
			"--controllers=*",
			// The defaults (20/s) take minutes to create a thousand Deployments' pods; a
			// cluster this size in production raises them too.
			"--kube-api-qps=200", "--kube-api-burst=400",
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(cp.LogDir, "kube-controller-manager-certs"),
		}
	}, healthz); err != nil {
		return nil, err
	}
	t.Cleanup(c.ControllerManager.Stop)

	sched, err := testbin.Path(ctx, "kube-scheduler", progress)
	if err != nil {
		return nil, err
	}
	c.Scheduler = &Process{Name: "kube-scheduler", Path: sched, LogPath: filepath.Join(cp.LogDir, "kube-scheduler.log")}
	if _, err := startListening(ctx, c.Scheduler, func(port int) []string {
		return []string{
			"--kubeconfig=" + cp.Kubeconfig,
			"--authentication-kubeconfig=" + cp.Kubeconfig,
			"--authorization-kubeconfig=" + cp.Kubeconfig,
			"--kube-api-qps=200", "--kube-api-burst=400",
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(cp.LogDir, "kube-scheduler-certs"),
		}
	}, healthz); err != nil {
		return nil, err
	}
	t.Cleanup(c.Scheduler.Stop)

	kwok, err := testbin.Path(ctx, "kwok", progress)
	if err != nil {
		return nil, err
	}
	kwokStages, err := testbin.KwokStages(ctx)
	if err != nil {
		return nil, err
	}
	c.Kwok = &Process{Name: "kwok", Path: kwok, LogPath: filepath.Join(cp.LogDir, "kwok.log")}
	if _, err := startListening(ctx, c.Kwok, func(port int) []string {
		return []string{
			"--kubeconfig=" + cp.Kubeconfig,
			"--config=" + kwokStages,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			// Leases are the node lifecycle controller's heartbeat; with them the node stays
			// Ready however long a test runs.
			"--node-lease-duration-seconds=40",
			"--cidr=10.244.0.1/16",
			"--node-ip=10.0.0.1",
			"--server-address=127.0.0.1:" + strconv.Itoa(port),
		}
	}, func(port int) error { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)) }); err != nil {
		return nil, err
	}
	t.Cleanup(c.Kwok.Stop)

	if err := c.addNode(ctx); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) addNode(ctx context.Context) error {
	// Room for the scale benchmarks: 10,000 one-pod apps, and 1,000 releasing at once
	// with a surge pod each.
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("10000"),
		corev1.ResourceMemory: resource.MustParse("10Ti"),
		corev1.ResourcePods:   resource.MustParse("25000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": c.NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if err := c.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the simulated node: %w", err)
	}
	return nil
}

// waitReady waits for the node to be Ready (kwok works) and for the default ServiceAccount
// (the controller manager works).
func (c *Cluster) waitReady(ctx context.Context) error {
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var node corev1.Node
		if err := c.Client.Get(ctx, types.NamespacedName{Name: c.NodeName}, &node); err != nil {
			return false, nil
		}
		return NodeReady(&node), nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready (kwok log %s): %w", c.NodeName, c.Kwok.LogPath, err)
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var sa corev1.ServiceAccount
		return c.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "default"}, &sa) == nil, nil
	})
	if err != nil {
		return fmt.Errorf("controller manager created no default ServiceAccount (log %s): %w", c.ControllerManager.LogPath, err)
	}
	return nil
}

// NodeReady reports the node's Ready condition.
func NodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodReady reports the pod's Ready condition: what a Service's endpoints go by.
func PodReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// healthz probes a Kubernetes component's self-signed secure port.
func healthz(port int) error {
	return httpOK(fmt.Sprintf("https://127.0.0.1:%d/healthz", port))
}

var probeClient = &http.Client{
	Timeout: 2 * time.Second,
	// The components serve self-signed certificates on loopback; only liveness is checked.
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
}

func httpOK(url string) error {
	resp, err := probeClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// testWriter sends tool build progress to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
