package rollout

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
)

// Built-in args every run gets when its templates declare them.
const (
	ArgNamespace  = "namespace"
	ArgRollout    = "rollout"
	ArgService    = "service"
	ArgStableHash = "stable-hash"
	ArgCanaryHash = "canary-hash"
)

// runLabel marks the runs of a Rollout, so they can be listed and cleaned up.
const runLabel = "promgate.io/rollout"

// errTemplate is a referenced template that cannot be used; the release waits for it.
type errTemplate struct{ field, msg string }

func (e *errTemplate) Error() string { return e.field + ": " + e.msg }

// buildRun merges the templates of an analysis into one AnalysisRun spec with the
// Rollout's args and the built-ins.
func (s *state) buildRun(ctx context.Context, a *v1alpha1.RolloutAnalysis, field string) (*v1alpha1.AnalysisRunSpec, error) {
	ro := s.ro
	spec := &v1alpha1.AnalysisRunSpec{}
	declared := map[string]v1alpha1.Argument{}
	var order []string
	for i, ref := range a.Templates {
		f := fmt.Sprintf("%s.templates[%d]", field, i)
		var ts *v1alpha1.AnalysisTemplateSpec
		if ref.ClusterScope {
			var t v1alpha1.ClusterAnalysisTemplate
			if err := s.c.Get(ctx, client.ObjectKey{Name: ref.TemplateName}, &t); err != nil {
				return nil, templateErr(f, "ClusterAnalysisTemplate", ref.TemplateName, err)
			}
			ts = &t.Spec
		} else {
			var t v1alpha1.AnalysisTemplate
			if err := s.c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ref.TemplateName}, &t); err != nil {
				return nil, templateErr(f, "AnalysisTemplate", ref.TemplateName, err)
			}
			ts = &t.Spec
		}
		for _, m := range ts.Metrics {
			if slices.ContainsFunc(spec.Metrics, func(x v1alpha1.Metric) bool { return x.Name == m.Name }) {
				return nil, &errTemplate{f, fmt.Sprintf("metric %q is also in an earlier template", m.Name)}
			}
			spec.Metrics = append(spec.Metrics, *m.DeepCopy())
		}
		for _, arg := range ts.Args {
			if _, ok := declared[arg.Name]; !ok {
				order = append(order, arg.Name)
			}
			// A value in a later template does not erase one given by an earlier template.
			if prev, ok := declared[arg.Name]; !ok || (prev.Value == nil && prev.ValueFrom == nil) {
				declared[arg.Name] = *arg.DeepCopy()
			}
		}
		spec.DryRun = append(spec.DryRun, ts.DryRun...)
		spec.MeasurementRetention = append(spec.MeasurementRetention, ts.MeasurementRetention...)
		spec.Templates = append(spec.Templates, v1alpha1.AnalysisTemplateRef{Name: ref.TemplateName, ClusterScope: ref.ClusterScope})
	}
	builtin := map[string]string{
		ArgNamespace:  ro.Namespace,
		ArgRollout:    ro.Name,
		ArgStableHash: ro.Status.StableRevision,
		ArgCanaryHash: ro.Status.CanaryRevision,
	}
	if st, _ := ro.Spec.Strategy.Active(); st != nil && len(st.TrafficRoutings) > 0 {
		builtin[ArgService] = st.TrafficRoutings[0].Service
	}
	for name, v := range builtin {
		if arg, ok := declared[name]; ok && arg.Value == nil && arg.ValueFrom == nil {
			arg.Value = new(v)
			declared[name] = arg
		}
	}
	for i, ra := range a.Args {
		f := fmt.Sprintf("%s.args[%d]", field, i)
		arg := v1alpha1.Argument{Name: ra.Name, Value: ra.Value}
		switch {
		case ra.ValueFrom != nil && ra.ValueFrom.SecretKeyRef != nil:
			arg.ValueFrom = &v1alpha1.ArgumentValueFrom{SecretKeyRef: ra.ValueFrom.SecretKeyRef.DeepCopy()}
		case ra.ValueFrom != nil && ra.ValueFrom.PodTemplateHashValue == "Stable":
			arg.Value = new(ro.Status.StableRevision)
		case ra.ValueFrom != nil && ra.ValueFrom.PodTemplateHashValue == "Canary":
			arg.Value = new(ro.Status.CanaryRevision)
		case ra.Value == nil:
			return nil, &errTemplate{f, "a value or valueFrom is required"}
		}
		if _, ok := declared[ra.Name]; !ok {
			order = append(order, ra.Name)
		}
		declared[ra.Name] = arg
	}
	for _, name := range order {
		spec.Args = append(spec.Args, declared[name])
	}
	return spec, nil
}

func templateErr(field, kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return &errTemplate{field + ".templateName", fmt.Sprintf("%s %q not found", kind, name)}
	}
	return fmt.Errorf("reading %s %s: %w", kind, name, err)
}

// ensureRun returns the run called name, creating it from the analysis when it does not
// exist. The name is recorded in status before the run is created, so a restart finds it.
func (s *state) ensureRun(ctx context.Context, name string, a *v1alpha1.RolloutAnalysis, field, kind string) (*v1alpha1.AnalysisRun, error) {
	ro := s.ro
	var run v1alpha1.AnalysisRun
	err := s.c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &run)
	if err == nil {
		return &run, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading AnalysisRun %s: %w", name, err)
	}
	spec, err := s.buildRun(ctx, a, field)
	if err != nil {
		return nil, err
	}
	run = v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ro.Namespace,
			Labels: map[string]string{runLabel: ro.Name, "promgate.io/analysis": kind, "promgate.io/revision": ro.Status.CanaryRevision},
		},
		Spec: *spec,
	}
	if err := controllerutil.SetControllerReference(ro, &run, s.c.Scheme()); err != nil {
		return nil, err
	}
	if err := s.c.Create(ctx, &run); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// The cache has not seen our own earlier create yet.
			if err := s.r.APIReader.Get(ctx, client.ObjectKeyFromObject(&run), &run); err != nil {
				return nil, fmt.Errorf("reading AnalysisRun %s: %w", name, err)
			}
			return &run, nil
		}
		return nil, fmt.Errorf("creating AnalysisRun %s: %w", name, err)
	}
	return &run, nil
}

// terminateRun stops a run that is still measuring; its verdict no longer matters.
func (s *state) terminateRun(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	var run v1alpha1.AnalysisRun
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: name}, &run); err != nil {
		return client.IgnoreNotFound(err)
	}
	if run.Spec.Terminate || run.Status.Phase.Completed() {
		return nil
	}
	patch := client.MergeFrom(run.DeepCopy())
	run.Spec.Terminate = true
	if err := s.c.Patch(ctx, &run, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// runName names a run of the release; it is written to status before the run exists.
func runName(ro *v1alpha1.Rollout, what string, at time.Time) string {
	return fmt.Sprintf("%s-%s-%s-%d", ro.Name, ro.Status.CanaryRevision, what, at.UnixMilli())
}

// background runs the Rollout's background analysis from its starting step; done says
// the release must not move on in this pass.
func (s *state) background(ctx context.Context) (res reconcile.Result, done bool, err error) {
	bg := s.ro.Spec.Analysis
	st := &s.ro.Status
	if bg == nil || st.CanaryRevision == "" || st.CurrentStepIndex < ptr.Deref(bg.StartingStep, 1) {
		return res, false, nil
	}
	if st.AnalysisRuns.Background == "" {
		st.AnalysisRuns.Background = runName(s.ro, "background", s.now)
		return reconcile.Result{Requeue: true}, true, nil
	}
	run, err := s.ensureRun(ctx, st.AnalysisRuns.Background, &bg.RolloutAnalysis, "spec.analysis", "background")
	if err != nil {
		return res, true, err
	}
	switch run.Status.Phase {
	case v1alpha1.AnalysisPhaseFailed, v1alpha1.AnalysisPhaseError:
		s.verdict(string(run.Status.Phase), v1alpha1.DecidedByAnalysis, decisive(run))
		return res, true, s.abort(ctx, fmt.Sprintf("background analysis %s %s: %s", run.Name, run.Status.Phase, run.Status.Message), v1alpha1.DecidedByAnalysis)
	case v1alpha1.AnalysisPhaseInconclusive:
		if st.CurrentStepState == v1alpha1.StepReady {
			// A human approved past it: measure afresh from here.
			st.AnalysisRuns.Background = ""
			return res, false, nil
		}
		if st.CurrentStepState != v1alpha1.StepPaused {
			s.enter(st.CurrentStepIndex, v1alpha1.StepPaused)
		}
		st.Phase = v1alpha1.RolloutPhasePaused
		st.Message = fmt.Sprintf("background analysis %s is inconclusive: %s; approve, retry or jump", run.Name, run.Status.Message)
		s.setCondition(ConditionProgressing, metav1.ConditionFalse, "AnalysisInconclusive", st.Message)
		return res, true, nil
	}
	return res, false, nil
}
