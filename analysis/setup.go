package analysis

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/shared"
)

// Options configures the analysis controllers.
type Options struct {
	// PrometheusAddress serves metrics that name no address.
	PrometheusAddress string
	// Workers bounds runs measured in parallel.
	Workers int
	// MaxConcurrentQueries bounds queries in flight per Prometheus.
	MaxConcurrentQueries int
	// Registry receives the controller's metrics (controller-runtime's registry in the
	// manager).
	Registry prometheus.Registerer
}

// SetupWithManager adds the AnalysisRun, AnalysisTemplate and ClusterAnalysisTemplate
// controllers to mgr, sharing one query executor and one engine, whose job metrics run
// Jobs through mgr's client.
func SetupWithManager(mgr manager.Manager, o Options) (*Engine, error) {
	exec, err := shared.NewExecutor(o.Registry, shared.Options{MaxConcurrentPerTarget: o.MaxConcurrentQueries})
	if err != nil {
		return nil, fmt.Errorf("creating the query executor: %w", err)
	}
	pods, err := kubernetes.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("creating the pod log client: %w", err)
	}
	engine := NewEngine(exec, o.PrometheusAddress, Cluster{Client: mgr.GetClient(), Pods: pods.CoreV1()})
	m, err := NewMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering analysis metrics: %w", err)
	}
	status, err := apiutil.RESTClientForGVK(v1alpha1.GroupVersion.WithKind("AnalysisRun"), true, false,
		mgr.GetConfig(), serializer.NewCodecFactory(mgr.GetScheme()), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("creating the status client: %w", err)
	}
	runs := &RunReconciler{Client: mgr.GetClient(), Secrets: mgr.GetAPIReader(), Status: status, Engine: engine, Recorder: mgr.GetEventRecorder("promgate"), Metrics: m}
	if err := runs.SetupWithManager(mgr, o.Workers); err != nil {
		return nil, fmt.Errorf("setting up the AnalysisRun controller: %w", err)
	}
	for _, cluster := range []bool{false, true} {
		tr := &TemplateReconciler{Client: mgr.GetClient(), Engine: engine, Cluster: cluster}
		if err := tr.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up the template controller: %w", err)
		}
	}
	return engine, nil
}
