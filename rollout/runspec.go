package rollout

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/analysis"
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

// buildRun merges the templates of an analysis, and those they include, into one
// AnalysisRun spec with the Rollout's args and the built-ins; args taken from the
// Rollout's fields (fieldRef) are resolved here, since the run itself knows no Rollout.
// A template that cannot be used is a *field.Error (NotFound when it does not exist):
// the release waits for it to be fixed.
func (s *state) buildRun(ctx context.Context, a *v1alpha1.RolloutAnalysis, path *field.Path) (*v1alpha1.AnalysisRunSpec, error) {
	ro := s.ro
	spec := &v1alpha1.AnalysisRunSpec{}
	declared := map[string]v1alpha1.Argument{}
	var order []string
	included, err := analysis.Expand(path.Child("templates"), a.Templates, func(f *field.Path, ref v1alpha1.RolloutAnalysisTemplate) (*v1alpha1.AnalysisTemplateSpec, error) {
		if ref.ClusterScope {
			var t v1alpha1.ClusterAnalysisTemplate
			if err := s.c.Get(ctx, client.ObjectKey{Name: ref.TemplateName}, &t); err != nil {
				return nil, templateErr(f, "ClusterAnalysisTemplate", ref.TemplateName, err)
			}
			return &t.Spec, nil
		}
		var t v1alpha1.AnalysisTemplate
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ref.TemplateName}, &t); err != nil {
			return nil, templateErr(f, "AnalysisTemplate", ref.TemplateName, err)
		}
		return &t.Spec, nil
	})
	if err != nil {
		return nil, err
	}
	for _, inc := range included {
		ref, ts := inc.Ref, inc.Spec
		for _, m := range ts.Metrics {
			if slices.ContainsFunc(spec.Metrics, func(x v1alpha1.Metric) bool { return x.Name == m.Name }) {
				return nil, field.Duplicate(inc.Path.Child("templateName"), fmt.Sprintf("metric %s of %s", m.Name, ref.TemplateName))
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
	// Templates' args that read the Rollout's fields get their values now, unless the
	// Rollout gives them (below).
	for _, name := range order {
		if arg := declared[name]; arg.ValueFrom != nil && arg.ValueFrom.FieldRef != nil && !slices.ContainsFunc(a.Args, func(ra v1alpha1.AnalysisRunArgument) bool { return ra.Name == name }) {
			v, err := fieldValue(ro, arg.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, field.Invalid(path.Child("templates"), arg.ValueFrom.FieldRef.FieldPath, fmt.Sprintf("arg %s of the templates: %v", name, err))
			}
			declared[name] = v1alpha1.Argument{Name: name, Value: &v}
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
		case ra.ValueFrom != nil && ra.ValueFrom.FieldRef != nil:
			v, err := fieldValue(ro, ra.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, field.Invalid(f.Child("valueFrom", "fieldRef", "fieldPath"), ra.ValueFrom.FieldRef.FieldPath, err.Error())
			}
			arg.Value = &v
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

// fieldValue is the value of a field of the Rollout's metadata, named as Argo Rollouts
// and the downward API name it: metadata.name, metadata.namespace, metadata.uid,
// metadata.labels['KEY'] or metadata.annotations['KEY']. A label or annotation the
// Rollout does not have is an error, not an empty value a query would silently use.
func fieldValue(ro *v1alpha1.Rollout, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return ro.Name, nil
	case "metadata.namespace":
		return ro.Namespace, nil
	case "metadata.uid":
		return string(ro.UID), nil
	}
	for _, m := range []struct {
		prefix, what string
		values       map[string]string
	}{{"metadata.labels", "label", ro.Labels}, {"metadata.annotations", "annotation", ro.Annotations}} {
		rest, ok := strings.CutPrefix(fieldPath, m.prefix)
		if !ok {
			continue
		}
		key, ok := subscript(rest)
		if !ok {
			break
		}
		v, ok := m.values[key]
		if !ok {
			return "", fmt.Errorf("the Rollout has no %s %q", m.what, key)
		}
		return v, nil
	}
	return "", fmt.Errorf("%q is not metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'] or metadata.annotations['KEY']", fieldPath)
}

// subscript reads ['KEY'] or ["KEY"].
func subscript(s string) (string, bool) {
	if len(s) < 4 || s[0] != '[' || s[len(s)-1] != ']' {
		return "", false
	}
	q := s[1 : len(s)-1]
	if q[0] != q[len(q)-1] || (q[0] != '\'' && q[0] != '"') {
		return "", false
	}
	return q[1 : len(q)-1], true
}

func templateErr(path *field.Path, kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return fielderr.WithDetail(field.NotFound(path.Child("templateName"), name), fmt.Sprintf("%s %q not found", kind, name))
	}
	return fmt.Errorf("reading %s %s: %w", kind, name, err)
}
