package rollout

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

// Built-in args every run gets when its templates declare them.
const (
	ArgNamespace  = "namespace"
	ArgRollout    = "rollout"
	ArgService    = "service"
	ArgStableHash = "stable-hash"
	ArgCanaryHash = "canary-hash"
	// ArgBaselineHash is the pod-template-hash of the step's fresh baseline pods; a run
	// at a step without a baseline does not get it.
	ArgBaselineHash = "baseline-hash"
	// ArgRelease and ArgReleaseBatch are the values of the pods' LabelRelease and
	// LabelReleaseBatch for the step in progress, to select its batch.
	ArgRelease      = "release"
	ArgReleaseBatch = "release-batch"
)

// buildRun merges the templates of an analysis into one AnalysisRun spec with the
// Rollout's args and the built-ins.
// A template that cannot be used is a *field.Error (NotFound when it does not exist):
// the release waits for it to be fixed.
func (s *state) buildRun(ctx context.Context, a *v1alpha1.RolloutAnalysis, path *field.Path) (*v1alpha1.AnalysisRunSpec, error) {
	ro := s.ro
	spec := &v1alpha1.AnalysisRunSpec{}
	declared := map[string]v1alpha1.Argument{}
	var order []string
	for i, ref := range a.Templates {
		f := path.Child("templates").Index(i)
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
				return nil, field.Duplicate(f.Child("templateName"), fmt.Sprintf("metric %s of %s", m.Name, ref.TemplateName))
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
		ArgNamespace:    ro.Namespace,
		ArgRollout:      ro.Name,
		ArgStableHash:   ro.Status.StableRevision,
		ArgCanaryHash:   ro.Status.CanaryRevision,
		ArgRelease:      s.releaseID(),
		ArgReleaseBatch: strconv.Itoa(int(ro.Status.CurrentStepIndex)),
	}
	if st, _ := ro.Spec.Strategy.Active(); st != nil && len(st.TrafficRoutings) > 0 {
		builtin[ArgService] = st.TrafficRoutings[0].Service
	}
	if ro.Status.BaselineRevision != "" {
		builtin[ArgBaselineHash] = ro.Status.BaselineRevision
	}
	for name, v := range builtin {
		if arg, ok := declared[name]; ok && arg.Value == nil && arg.ValueFrom == nil {
			arg.Value = new(v)
			declared[name] = arg
		}
	}
	for i, ra := range a.Args {
		f := path.Child("args").Index(i)
		arg := v1alpha1.Argument{Name: ra.Name, Value: ra.Value}
		switch {
		case ra.ValueFrom != nil && ra.ValueFrom.SecretKeyRef != nil:
			arg.ValueFrom = &v1alpha1.ArgumentValueFrom{SecretKeyRef: ra.ValueFrom.SecretKeyRef.DeepCopy()}
		case ra.ValueFrom != nil && ra.ValueFrom.PodTemplateHashValue == "Stable":
			arg.Value = new(ro.Status.StableRevision)
		case ra.ValueFrom != nil && ra.ValueFrom.PodTemplateHashValue == "Canary":
			arg.Value = new(ro.Status.CanaryRevision)
		case ra.ValueFrom != nil && ra.ValueFrom.PodTemplateHashValue == "Baseline":
			if ro.Status.BaselineRevision == "" {
				return nil, field.Invalid(f.Child("valueFrom", "podTemplateHashValue"), "Baseline", "the run's step runs no baseline (steps[].baseline)")
			}
			arg.Value = new(ro.Status.BaselineRevision)
		case ra.Value == nil:
			return nil, field.Required(f.Child("value"), "a value or valueFrom is required")
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

func templateErr(path *field.Path, kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return fielderr.WithDetail(field.NotFound(path.Child("templateName"), name), fmt.Sprintf("%s %q not found", kind, name))
	}
	return fmt.Errorf("reading %s %s: %w", kind, name, err)
}
