package main

import (
	"flag"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/job"
	"github.com/promgate/promgate/providers/shared"
	"github.com/promgate/promgate/rollout"
	"github.com/promgate/promgate/rollout/alerts"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch

// alertWebhookPath is where Alertmanager's webhook_configs url points.
const alertWebhookPath = "/alertmanager"

func runController(args []string) int {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var (
		kubeconfig     = fs.String("kubeconfig", "", "kubeconfig file; default: in-cluster, then $KUBECONFIG, then ~/.kube/config")
		metricsAddr    = fs.String("metrics-bind-address", ":8080", "address of /metrics; 0 disables it")
		probeAddr      = fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		leaderElect    = fs.Bool("leader-elect", false, "elect a leader so only one replica acts")
		leaderNS       = fs.String("leader-election-namespace", "", "namespace of the leader election lease; default: the pod's")
		prometheusAddr = fs.String("prometheus-address", "", "Prometheus used by metrics that name no address")
		qps            = fs.Float64("kube-api-qps", 300, "API requests per second: every measurement is a status write, 1,000 runs at 10 s need 100/s")
		burst          = fs.Int("kube-api-burst", 600, "API request burst")
		workers        = fs.Int("analysis-workers", 64, "AnalysisRuns measured in parallel")
		rolloutWorkers = fs.Int("rollout-workers", 16, "Rollouts reconciled in parallel")
		maxQueries     = fs.Int("max-concurrent-queries", shared.DefaultMaxConcurrentPerTarget, "queries in flight per Prometheus")
		pprofAddr      = fs.String("pprof-bind-address", "", "address of /debug/pprof for profiling; empty disables it")
		webhookAddr    = fs.String("alert-webhook-bind-address", "", "address of the Alertmanager webhook receiver (path /alertmanager); empty disables it")
		webhookSecret  = fs.String("alert-webhook-token-secret", "", "NAMESPACE/NAME of the Secret whose key \"token\" Alertmanager must send as a bearer token; required with --alert-webhook-bind-address")
	)
	zopts := zap.Options{}
	zopts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitInvalidInput
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	log := ctrl.Log.WithName("setup")

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
	// The Jobs promgate created for job metrics: those the analysis controller reads.
	jobSelector, err := labels.Parse(job.RunUIDLabel)
	if err != nil {
		log.Error(err, "building the Job selector")
		return exitError
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "promgate-controller.promgate.io",
		LeaderElectionNamespace: *leaderNS,
		PprofBindAddress:        *pprofAddr,
		// Managed fields are never read here; dropping them from the cache saves memory on
		// every cached run. Of the cluster's Jobs only those of job metrics are read.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         map[client.Object]cache.ByObject{&batchv1.Job{}: {Label: jobSelector}},
		},
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
	ro := &rollout.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("promgate"), Metrics: releaseMetrics}
	if err := ro.SetupWithManager(mgr, *rolloutWorkers); err != nil {
		log.Error(err, "setting up the Rollout controller")
		return exitError
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "adding health check")
		return exitError
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "adding ready check")
		return exitError
	}
	log.Info("starting manager", "prometheusAddress", *prometheusAddr, "analysisWorkers", *workers)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		return exitError
	}
	return exitSuccessful
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
