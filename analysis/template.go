package analysis

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/providers"
)

// placeholders are tried in turn for args a template leaves to its runs: a number, a
// duration and a word cover the places an arg can stand in PromQL.
var placeholders = []string{"0", "1m", "placeholder"}

// ValidateTemplate checks every metric of a template as a run would prepare it: PromQL
// syntax, condition compilation, durations, limits and auth, without reading Secrets.
// Args without a value get each placeholder in turn, and a metric counts the problems of
// the placeholder that leaves the fewest, so that a problem of a placeholder is not taken
// for one of the template. It returns every problem, with field paths as Prepare has
// them.
func (e *Engine) ValidateTemplate(ctx context.Context, spec *v1alpha1.AnalysisTemplateSpec) fielderr.List {
	var errs fielderr.List
	checkNames(spec.Metrics, &errs)
	run := &v1alpha1.AnalysisRunSpec{DryRun: spec.DryRun, MeasurementRetention: spec.MeasurementRetention}
	for i, m := range spec.Metrics {
		var fewest fielderr.List
		for j, ph := range placeholders {
			env := providers.Env{Args: map[string]string{}, Template: true}
			for _, a := range spec.Args {
				env.Args[a.Name] = ptr.Deref(a.Value, ph)
			}
			var found fielderr.List
			e.prepareMetric(ctx, MetricPath(i, m), run, m, env, &found)
			if j == 0 || len(found) < len(fewest) {
				fewest = found
			}
			if len(fewest) == 0 {
				break
			}
		}
		errs = append(errs, fewest...)
	}
	return errs
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
		setCondition(&status.Conditions, obj.GetGeneration(), v1alpha1.ConditionValid, metav1.ConditionFalse, "InvalidSpec", errs.Err().Error())
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
