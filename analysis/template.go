package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
)

// placeholderAddress stands in for a Prometheus address while validating: building a
// provider never contacts it.
const placeholderAddress = "http://prometheus.placeholder.invalid:9090"

// placeholders are tried in turn for args a template leaves to its runs: a number, a
// duration and a word cover the places an arg can stand in PromQL.
var placeholders = []string{"0", "1m", "placeholder"}

// ValidateTemplate checks every metric of a template as a run would prepare it: PromQL
// syntax, condition compilation, durations and limits. Args without a value get
// placeholder values. It returns one *SpecError per broken metric.
func (e *Engine) ValidateTemplate(ctx context.Context, spec *v1alpha1.AnalysisTemplateSpec) []error {
	var errs []error
	for _, m := range spec.Metrics {
		m = *m.DeepCopy()
		if m.Provider.Prometheus != nil && m.Provider.Prometheus.Address == "" {
			m.Provider.Prometheus.Address = placeholderAddress
		}
		if err := placeholderTLS(fmt.Sprintf("metrics[%s].provider", m.Name), &m.Provider); err != nil {
			errs = append(errs, err)
			continue
		}
		var first error
		for _, ph := range placeholders {
			run := &v1alpha1.AnalysisRunSpec{Metrics: []v1alpha1.Metric{m}, DryRun: spec.DryRun, MeasurementRetention: spec.MeasurementRetention}
			for _, a := range spec.Args {
				v := ph
				if a.Value != nil {
					v = *a.Value
				}
				run.Args = append(run.Args, v1alpha1.Argument{Name: a.Name, Value: &v})
			}
			_, err := e.Prepare(ctx, run, placeholderSecret)
			if err == nil {
				first = nil
				break
			}
			if first == nil {
				first = err
			}
		}
		if first != nil {
			errs = append(errs, first)
		}
	}
	return errs
}

// placeholderSecret stands in for every Secret while validating: a template is checked
// before, and apart from, the namespace its runs read Secrets from.
func placeholderSecret(context.Context, string, string) (string, error) { return "placeholder", nil }

// placeholderTLS checks that a client certificate comes with its key, then drops the TLS
// Secrets, whose PEM contents exist only at run time, so validation can build the client.
func placeholderTLS(field string, p *v1alpha1.MetricProvider) error {
	var auth *v1alpha1.HTTPAuth
	switch {
	case p.Prometheus != nil:
		auth, field = p.Prometheus.Auth, field+".prometheus.auth.tls"
	case p.Web != nil:
		auth, field = p.Web.Auth, field+".web.auth.tls"
	}
	if auth == nil || auth.TLS == nil {
		return nil
	}
	t := auth.TLS
	if (t.CertSecret == nil) != (t.KeySecret == nil) {
		return specErr(field, "certSecret and keySecret go together")
	}
	t.CASecret, t.CertSecret, t.KeySecret = nil, nil, nil
	return nil
}

// +kubebuilder:rbac:groups=promgate.io,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=promgate.io,resources=analysistemplates/status;clusteranalysistemplates/status,verbs=get;update;patch

// TemplateReconciler keeps the Valid condition of AnalysisTemplates and
// ClusterAnalysisTemplates current, so `kubectl get at` shows a broken template before
// any release uses it.
type TemplateReconciler struct {
	Client client.Client
	Engine *Engine
	// Cluster selects ClusterAnalysisTemplates.
	Cluster bool
}

// SetupWithManager registers the controller.
func (r *TemplateReconciler) SetupWithManager(mgr manager.Manager) error {
	var obj client.Object = &v1alpha1.AnalysisTemplate{}
	name := "analysistemplate"
	if r.Cluster {
		obj, name = &v1alpha1.ClusterAnalysisTemplate{}, "clusteranalysistemplate"
	}
	return builder.ControllerManagedBy(mgr).For(obj).Named(name).Complete(r)
}

// Reconcile validates the template and records the result.
func (r *TemplateReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var (
		obj    client.Object
		spec   *v1alpha1.AnalysisTemplateSpec
		status *v1alpha1.AnalysisTemplateStatus
	)
	if r.Cluster {
		t := &v1alpha1.ClusterAnalysisTemplate{}
		obj, spec, status = t, &t.Spec, &t.Status
	} else {
		t := &v1alpha1.AnalysisTemplate{}
		obj, spec, status = t, &t.Spec, &t.Status
	}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	before := status.DeepCopy()
	if errs := r.Engine.ValidateTemplate(ctx, spec); len(errs) > 0 {
		setCondition(&status.Conditions, obj.GetGeneration(), v1alpha1.ConditionValid, metav1.ConditionFalse, "InvalidSpec", errors.Join(errs...).Error())
	} else {
		setCondition(&status.Conditions, obj.GetGeneration(), v1alpha1.ConditionValid, metav1.ConditionTrue, "Valid",
			fmt.Sprintf("%d metrics: queries parse, conditions compile, limits are consistent", len(spec.Metrics)))
	}
	status.ObservedGeneration = obj.GetGeneration()
	if equality.Semantic.DeepEqual(before, status) {
		return reconcile.Result{}, nil
	}
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return reconcile.Result{}, fmt.Errorf("writing template status: %w", err)
	}
	return reconcile.Result{}, nil
}
