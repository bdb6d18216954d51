package analysis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
// duration and a word cover the places an arg can stand in PromQL and in conditions.
// A field that is nothing but such an arg gets a stand-in of the field's kind instead (a
// URL for a url or address, see renderer).
var placeholders = []string{"0", "1m", "placeholder"}

// ValidateTemplate checks every metric of a template as a run would prepare it: args
// rendered, PromQL syntax, condition compilation, durations, limits, auth and Job specs,
// without reading Secrets. Args without a value (or whose value a Secret or the Rollout
// gives) get each placeholder in turn, and a metric counts the problems of the
// placeholder that leaves the fewest, so that a problem of a placeholder is not taken for
// one of the template. It returns every problem, with field paths as Prepare has them,
// and warnings: what does not stop a run but would make every measurement an Error.
func (e *Engine) ValidateTemplate(ctx context.Context, spec *v1alpha1.AnalysisTemplateSpec) (problems, warnings fielderr.List) {
	checkNames(spec.Metrics, &problems)
	if len(spec.Metrics) == 0 && len(spec.Templates) == 0 {
		problems.Add(field.Required(field.NewPath("metrics"), "at least one metric, or one included template, is required"))
	}
	// What dryRun and measurementRetention select may be in the templates this one
	// includes, which only a run brings together.
	sel := newSelection(spec.Metrics, spec.DryRun, spec.MeasurementRetention, len(spec.Templates) == 0, &problems)
	standIns := map[string]bool{}
	for _, a := range spec.Args {
		if a.Value == nil {
			standIns[a.Name] = true
		}
	}
	for i, m := range spec.Metrics {
		var fewest, warned fielderr.List
		for j, ph := range placeholders {
			args := map[string]string{}
			for _, a := range spec.Args {
				args[a.Name] = ptr.Deref(a.Value, ph)
			}
			var found fielderr.List
			_, w := e.prepareMetric(ctx, MetricPath(i, m), sel, m, providers.Env{Template: true}, renderer{args: args, standIns: standIns}, &found)
			if j == 0 || len(found) < len(fewest) {
				fewest, warned = found, w
			}
			if len(fewest) == 0 {
				break
			}
		}
		problems = append(problems, fewest...)
		warnings = append(warnings, warned...)
	}
	return problems, warnings
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
	errs, warnings := r.Engine.ValidateTemplate(ctx, spec)
	switch {
	case len(errs) > 0:
		setCondition(&status.Conditions, obj.GetGeneration(), v1alpha1.ConditionValid, metav1.ConditionFalse, "InvalidSpec", errs.Err().Error())
	case len(warnings) > 0:
		setCondition(&status.Conditions, obj.GetGeneration(), v1alpha1.ConditionValid, metav1.ConditionTrue, "ValidWithWarnings",
			fmt.Sprintf("%d metrics valid, but: %s", len(spec.Metrics), warnings.Err()))
	default:
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

// Included is a template a run is built from.
type Included struct {
	Ref  v1alpha1.RolloutAnalysisTemplate
	Spec *v1alpha1.AnalysisTemplateSpec
	// Path is the reference that brought it in: its own, or that of the template that
	// includes it, directly or not.
	Path *field.Path
}

// TemplateGetter reads the template ref names; path is the reference's (templates[i]),
// for the *field.Error of a template that does not exist.
type TemplateGetter func(path *field.Path, ref v1alpha1.RolloutAnalysisTemplate) (*v1alpha1.AnalysisTemplateSpec, error)

// Expand returns the templates refs, the field at path, name, each followed by those it
// includes (spec.templates), as Argo Rollouts orders them; a template named more than
// once comes once. A template that includes itself, directly or not, is a *field.Error at
// the templateName of the reference that leads to it; get's errors are returned as they
// are.
func Expand(path *field.Path, refs []v1alpha1.RolloutAnalysisTemplate, get TemplateGetter) ([]Included, error) {
	var out []Included
	seen := map[v1alpha1.RolloutAnalysisTemplate]bool{}
	var visit func(path *field.Path, ref v1alpha1.RolloutAnalysisTemplate, chain []v1alpha1.RolloutAnalysisTemplate) error
	visit = func(path *field.Path, ref v1alpha1.RolloutAnalysisTemplate, chain []v1alpha1.RolloutAnalysisTemplate) error {
		if slices.Contains(chain, ref) {
			loop := make([]string, 0, len(chain)+1)
			for _, c := range append(chain, ref) {
				loop = append(loop, templateKind(c)+" "+c.TemplateName)
			}
			return field.Invalid(path.Child("templateName"), ref.TemplateName, "templates include each other: "+strings.Join(loop, " includes "))
		}
		if seen[ref] {
			return nil
		}
		seen[ref] = true
		spec, err := get(path, ref)
		if err != nil {
			return err
		}
		out = append(out, Included{Ref: ref, Spec: spec, Path: path})
		for _, inner := range spec.Templates {
			if err := visit(path, inner, append(slices.Clip(chain), ref)); err != nil {
				return err
			}
		}
		return nil
	}
	for i, ref := range refs {
		if err := visit(path.Index(i), ref, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func templateKind(ref v1alpha1.RolloutAnalysisTemplate) string {
	if ref.ClusterScope {
		return "ClusterAnalysisTemplate"
	}
	return "AnalysisTemplate"
}
