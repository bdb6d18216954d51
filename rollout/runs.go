package rollout

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/promgate/promgate/api/v1alpha1"
)

// runLabel marks the runs of a Rollout, so they can be listed and cleaned up.
const runLabel = "promgate.io/rollout"

// ensureRun returns the run called name, creating it from the analysis when it does not
// exist. The name is recorded in status before the run is created, so a restart finds it.
func (s *state) ensureRun(ctx context.Context, name string, a *v1alpha1.RolloutAnalysis, path *field.Path, kind string) (*v1alpha1.AnalysisRun, error) {
	ro := s.ro
	var run v1alpha1.AnalysisRun
	err := s.c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: name}, &run)
	if err == nil {
		return &run, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading AnalysisRun %s: %w", name, err)
	}
	spec, err := s.buildRun(ctx, a, path)
	if err != nil {
		return nil, err
	}
	run = v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ro.Namespace,
			Labels: s.runLabels(kind),
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

// runLabels are a run's labels: its Rollout, kind and revision, and the Rollout's values
// of the shard's label keys.
func (s *state) runLabels(kind string) map[string]string {
	l := map[string]string{runLabel: s.ro.Name, "promgate.io/analysis": kind, "promgate.io/revision": s.ro.Status.CanaryRevision}
	for _, k := range s.r.ShardLabels {
		if v, ok := s.ro.Labels[k]; ok {
			l[k] = v
		}
	}
	return l
}
