package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/config/rbac"
	"github.com/promgate/promgate/providers/job"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/rollout"
	"github.com/promgate/promgate/rollout/alerts"
)

// alertWebhookPath is where Alertmanager's webhook_configs url points.
const alertWebhookPath = "/alertmanager"

// cacheSyncWait is how long a controller waits for its informers: without end, so that a
// missing RBAC rule or a CRD installed late leaves the leader unready and saying why,
// then working once it is fixed, rather than exiting after controller-runtime's default
// 2 minutes and crash-looping.
const cacheSyncWait time.Duration = 1<<63 - 1

// inClusterNamespace is where a pod learns its namespace.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func runController(args []string) int {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var (
		kubeconfig     = fs.String("kubeconfig", "", "kubeconfig file; default: in-cluster, then $KUBECONFIG, then ~/.kube/config")
		metricsAddr    = fs.String("metrics-bind-address", ":8080", "address of /metrics; 0 disables it")
		probeAddr      = fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		leaderElect    = fs.Bool("leader-elect", false, "elect a leader so only one replica acts")
		leaderNS       = fs.String("leader-election-namespace", "", "namespace of the leader election lease; default: the pod's")
		leaseDuration  = fs.Duration("leader-election-lease-duration", 15*time.Second, "how long a standby waits before it takes over a lease its leader stopped renewing")
		renewDeadline  = fs.Duration("leader-election-renew-deadline", 10*time.Second, "how long the leader retries renewing before it gives the lease up")
		retryPeriod    = fs.Duration("leader-election-retry-period", 2*time.Second, "how often leader election clients act")
		prometheusAddr = fs.String("prometheus-address", "", "Prometheus used by metrics that name no address")
		qps            = fs.Float64("kube-api-qps", 300, "API requests per second: every measurement is a status write, 1,000 runs at 10 s need 100/s")
		burst          = fs.Int("kube-api-burst", 600, "API request burst")
		workers        = fs.Int("analysis-workers", 64, "AnalysisRuns measured in parallel")
		rolloutWorkers = fs.Int("rollout-workers", 64, "Rollouts reconciled in parallel: a reconcile mostly waits on the API server, so a thousand releasing at once need many")
		maxQueries     = fs.Int("max-concurrent-queries", shared.DefaultMaxConcurrentPerTarget, "queries in flight per Prometheus")
		pprofAddr      = fs.String("pprof-bind-address", "", "address of /debug/pprof for profiling; empty disables it")
		webhookAddr    = fs.String("alert-webhook-bind-address", "", "address of the Alertmanager webhook receiver (path /alertmanager); empty disables it")
		webhookSecret  = fs.String("alert-webhook-token-secret", "", "NAMESPACE/NAME of the Secret whose key \"token\" Alertmanager must send as a bearer token; required with --alert-webhook-bind-address")
		shard          = fs.String("shard-label-selector", "", "label selector of the Rollouts this controller owns, with their AnalysisRuns; controllers with disjoint selectors split a cluster, each with its own leader election")
		leaderID       = fs.String("leader-election-id", "", "name of the leader election Lease; default: promgate-controller.promgate.io, with a hash of --shard-label-selector when set")
	)
	zopts := zap.Options{}
	zopts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitInvalidInput
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	log := ctrl.Log.WithName("setup")
	v := currentVersion()
	log.Info("promgate", "version", v.Version, "commit", v.Commit, "go", v.GoVersion)

	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		log.Error(err, "loading kubeconfig")
		return exitInvalidInput
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		log.Error(err, "building scheme")
		return exitError
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		log.Error(err, "building scheme")
		return exitError
	}
	if err := gatewayv1.Install(scheme); err != nil {
		log.Error(err, "building scheme")
		return exitError
	}
	shardSel, err := labels.Parse(*shard)
	if err != nil {
		log.Error(err, "--shard-label-selector is not a label selector", "value", *shard)
		return exitInvalidInput
	}
	// Managed fields are never read here; dropping them from the cache saves memory on
	// every cached run.
	cacheOpts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	// Of the cluster's Jobs only those of job metrics are read.
	jobSelector, err := labels.Parse(job.RunUIDLabel)
	if err != nil {
		log.Error(err, "building the Job selector")
		return exitError
	}
	cacheOpts.ByObject = map[client.Object]cache.ByObject{&batchv1.Job{}: {Label: jobSelector}}
	var shardKeys []string
	if *shard != "" {
		// A shard caches (and so reconciles) only its Rollouts and their runs; templates
		// are shared by every shard.
		cacheOpts.ByObject[&v1alpha1.Rollout{}] = cache.ByObject{Label: shardSel}
		cacheOpts.ByObject[&v1alpha1.AnalysisRun{}] = cache.ByObject{Label: shardSel}
		reqs, _ := shardSel.Requirements()
		for _, r := range reqs {
			shardKeys = append(shardKeys, r.Key())
		}
	}
	if *leaderID == "" {
		*leaderID = leaderElectionID(*shard)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        *leaderID,
		LeaderElectionNamespace: *leaderNS,
		LeaseDuration:           leaseDuration,
		RenewDeadline:           renewDeadline,
		RetryPeriod:             retryPeriod,
		// The process exits as soon as the manager stops, so a leader stopped gracefully
		// (a rolling update, a drained node) hands the lease over at once instead of making
		// its successor wait out the lease.
		LeaderElectionReleaseOnCancel: true,
		PprofBindAddress:              *pprofAddr,
		Cache:                         cacheOpts,
		Controller:                    config.Controller{CacheSyncTimeout: cacheSyncWait},
	})
	if err != nil {
		log.Error(err, "creating manager")
		return exitError
	}
	if _, err := analysis.SetupWithManager(mgr, analysis.Options{
		PrometheusAddress:    *prometheusAddr,
		Workers:              *workers,
		MaxConcurrentQueries: *maxQueries,
		Registry:             ctrlmetrics.Registry,
	}); err != nil {
		log.Error(err, "setting up controllers")
		return exitError
	}
	if *webhookAddr != "" {
		ns, name, ok := strings.Cut(*webhookSecret, "/")
		if !ok || ns == "" || name == "" {
			log.Error(nil, "--alert-webhook-token-secret must be NAMESPACE/NAME when --alert-webhook-bind-address is set", "value", *webhookSecret)
			return exitInvalidInput
		}
		hook := &alerts.Webhook{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), TokenSecret: types.NamespacedName{Namespace: ns, Name: name}}
		if err := mgr.Add(alerts.NewServer(*webhookAddr, alertWebhookPath, hook)); err != nil {
			log.Error(err, "adding the alert webhook receiver")
			return exitError
		}
	}
	releaseMetrics, err := rollout.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		log.Error(err, "registering release metrics")
		return exitError
	}
	if err := rollout.RegisterRolloutCount(ctrlmetrics.Registry, mgr.GetCache(), *shard); err != nil {
		log.Error(err, "registering the Rollout count")
		return exitError
	}
	ro := &rollout.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("promgate"), Metrics: releaseMetrics, ShardLabels: shardKeys}
	if err := ro.SetupWithManager(mgr, *rolloutWorkers); err != nil {
		log.Error(err, "setting up the Rollout controller")
		return exitError
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "adding health check")
		return exitError
	}
	if err := addReadyChecks(mgr, *leaderElect, *leaderNS); err != nil {
		log.Error(err, "adding ready checks")
		return exitError
	}
	log.Info("starting manager", "prometheusAddress", *prometheusAddr, "analysisWorkers", *workers)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		return exitError
	}
	return exitSuccessful
}

// addReadyChecks makes /readyz say whether the controller can work: it holds every RBAC
// permission it needs, and its informers have synced.
func addReadyChecks(mgr manager.Manager, leaderElect bool, leaderNS string) error {
	clusterRules, err := rbac.ControllerRules()
	if err != nil {
		return err
	}
	var leaseRules []rbacv1.PolicyRule
	leaseNS := ""
	if leaderElect {
		if leaseRules, err = rbac.LeaderElectionRules(); err != nil {
			return err
		}
		leaseNS = leaderNS
		if leaseNS == "" {
			// The manager found it the same way, or it would not have been created.
			b, err := os.ReadFile(inClusterNamespace)
			if err != nil {
				return fmt.Errorf("finding the leader election namespace: %w", err)
			}
			leaseNS = strings.TrimSpace(string(b))
		}
	}
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the access review client: %w", err)
	}
	acc := newAccess(cs, ctrl.Log.WithName("rbac"), clusterRules, leaseRules, leaseNS)
	if err := mgr.Add(acc); err != nil {
		return fmt.Errorf("adding the RBAC check: %w", err)
	}
	if err := mgr.AddReadyzCheck("rbac", acc.Ready); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("informers", informersSynced(mgr.GetCache()))
}

// informersSynced fails while an informer the controller started has not synced: a
// leader that cannot list what it watches does nothing, and must not look ready.
func informersSynced(c cache.Cache) healthz.Checker {
	return func(r *http.Request) error {
		// Long enough for the immediate look when all are synced, short for a probe.
		ctx, cancel := context.WithTimeout(r.Context(), 50*time.Millisecond)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced")
		}
		return nil
	}
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// leaderElectionID names the Lease of a controller, or of a shard: shards elect their
// leaders apart, so each has one.
func leaderElectionID(shard string) string {
	if shard == "" {
		return "promgate-controller.promgate.io"
	}
	sum := sha256.Sum256([]byte(shard))
	return fmt.Sprintf("promgate-controller-%x.promgate.io", sum[:5])
}
