package job

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/providers"
)

var _ providers.Factory = (*Factory)(nil)

var _ providers.Releaser = (*Factory)(nil)

// Name is the kind's field in v1alpha1.MetricProvider.
func (f *Factory) Name() string { return Name }

// Configured reports whether p sets the job field.
func (f *Factory) Configured(p *v1alpha1.MetricProvider) bool { return p.Job != nil }

// Answers is Verdicts: the Job's outcome is the measurement's.
func (f *Factory) Answers() providers.Answers { return providers.Verdicts }

// Check reports nothing: admission leaves the Job's spec to Build, which checks it
// before any run starts.
func (f *Factory) Check(*field.Path, *v1alpha1.MetricProvider) field.ErrorList { return nil }

// Build checks p's job field (what the API server would refuse in the Job, and what
// would make every measurement fail) and returns a Source that runs its Jobs for
// env.Run.
func (f *Factory) Build(_ context.Context, path *field.Path, p *v1alpha1.MetricProvider, env providers.Env) (providers.Source, fielderr.List) {
	spec, path := p.Job, path.Child(Name)
	var errs fielderr.List
	errs.Add(metav1validation.ValidateLabels(spec.Metadata.Labels, path.Child("metadata", "labels"))...)
	if _, ok := spec.Metadata.Labels[RunUIDLabel]; ok {
		errs.Add(field.Forbidden(path.Child("metadata", "labels").Key(RunUIDLabel), "promgate sets this label"))
	}
	errs.Add(checkJobSpec(path.Child("spec"), &spec.Spec)...)
	timeout := providers.Duration(path.Child("timeout"), spec.Timeout, &errs)
	if !env.Template && (env.Run == nil || f.client == nil) {
		errs.Add(field.Forbidden(path, "a job metric runs a Job in the cluster, and there is none here: apply the template and let a Rollout or an AnalysisRun run it"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	src := &Source{f: f, metric: env.Metric, meta: spec.Metadata, spec: spec.Spec, timeout: timeout}
	if env.Run != nil {
		src.run = *env.Run
	}
	src.desc = providers.Description{
		Kind: Name,
		// API calls are bounded per namespace, as queries are per Prometheus.
		Target:   "job/" + src.run.Namespace,
		Query:    string(src.run.UID) + "/" + env.Metric,
		Shown:    "the Job of metric " + env.Metric,
		Unshared: true,
	}
	return src, nil
}

// checkJobSpec reports what the API server would refuse in a Job made of spec, the field
// at path, or what would make it never succeed: no container, a container without a name
// or an image, two with one name, and a restart policy Jobs do not take.
func checkJobSpec(path *field.Path, spec *batchv1.JobSpec) field.ErrorList {
	var errs field.ErrorList
	pod := path.Child("template", "spec")
	if len(spec.Template.Spec.Containers) == 0 {
		errs = append(errs, field.Required(pod.Child("containers"), "a Job needs at least one container"))
	}
	seen := map[string]bool{}
	for i, c := range spec.Template.Spec.Containers {
		cp := pod.Child("containers").Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(cp.Child("name"), "a container needs a name"))
		case seen[c.Name]:
			errs = append(errs, fielderr.WithDetail(field.Duplicate(cp.Child("name"), c.Name), fmt.Sprintf("another container is named %q", c.Name)))
		}
		seen[c.Name] = true
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(cp.Child("image"), "a container needs an image"))
		}
	}
	switch rp := spec.Template.Spec.RestartPolicy; rp {
	case corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure:
	case "":
		errs = append(errs, field.Required(pod.Child("restartPolicy"), "a Job's pods restart Never or OnFailure; Never is usual for a test"))
	default:
		errs = append(errs, field.Invalid(pod.Child("restartPolicy"), rp, fmt.Sprintf("%q: a Job's pods restart Never or OnFailure", rp)))
	}
	for _, n := range []struct {
		field string
		v     *int32
	}{{"parallelism", spec.Parallelism}, {"completions", spec.Completions}, {"backoffLimit", spec.BackoffLimit}} {
		if n.v != nil && *n.v < 0 {
			errs = append(errs, field.Invalid(path.Child(n.field), *n.v, fmt.Sprintf("%d is negative", *n.v)))
		}
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *d, "must be positive"))
	}
	return errs
}
