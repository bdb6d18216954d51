package rollout

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
