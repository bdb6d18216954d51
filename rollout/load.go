package rollout

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

// load reads the workload and checks the references: the workload exists, no other
// Rollout releases it, and every traffic routing's objects can carry the steps.
func (s *state) load(ctx context.Context) error {
	if err := validateSpec(s.ro); err != nil {
		return err
	}
	if err := s.loadGates(); err != nil {
		return err
	}
	ref := s.ro.Spec.WorkloadRef
	w, err := s.loadWorkload(ctx)
	if err != nil {
		return err
	}
	if w == nil {
		return fielderr.WithDetail(field.NotFound(field.NewPath("spec", "workloadRef", "name"), ref.Name),
			fmt.Sprintf("%s %q not found in namespace %s", ref.Kind, ref.Name, s.ro.Namespace))
	}
	s.w = w
	if err := validateBaselineReplicas(s.ro, w); err != nil {
		return err
	}
	var others v1alpha1.RolloutList
	if err := s.c.List(ctx, &others, client.InNamespace(s.ro.Namespace), client.MatchingFields{workloadIndex: workloadKey(ref.Kind, ref.Name)}); err != nil {
		return fmt.Errorf("listing Rollouts of %s %s: %w", ref.Kind, ref.Name, err)
	}
	if by := releaser(w.owner(), s.ro, others.Items); by != "" {
		return field.Invalid(field.NewPath("spec", "workloadRef", "name"), ref.Name, fmt.Sprintf("%s %q is already released by Rollout %q", ref.Kind, ref.Name, by))
	}
	_, path := s.ro.Spec.Strategy.Active()
	for _, rt := range s.routers() {
		if err := rt.Validate(ctx, s.steps(), path.Child("steps")); err != nil {
			return err
		}
	}
	return nil
}

// loadWorkload reads the workload spec.workloadRef names; nil when it does not exist.
// validateSpec has checked the kind.
func (s *state) loadWorkload(ctx context.Context) (workload, error) {
	if s.ro.Spec.WorkloadRef.Kind == "StatefulSet" {
		sts, err := loadStatefulSet(ctx, s.c, s.r.APIReader, s.ro)
		if sts == nil || err != nil {
			return nil, err
		}
		if err := checkUpdateStrategy(sts.s); err != nil {
			return nil, field.Invalid(field.NewPath("spec", "workloadRef", "name"), sts.s.Name, err.Error())
		}
		return sts, nil
	}
	d, err := loadDeployment(ctx, s.c, s.r.APIReader, s.ro)
	if d == nil || err != nil {
		return nil, err
	}
	return d, nil
}

// releaser names the Rollout other than ro that releases a workload whose owner
// annotation says owner, or "" when ro may. The Rollout that took the workload over keeps
// it; only when no live one has does the oldest win, so an older Rollout that never took
// it (an invalid one, say) is not named in place of the one that did.
func releaser(owner string, ro *v1alpha1.Rollout, all []v1alpha1.Rollout) string {
	var live []*v1alpha1.Rollout
	for i := range all {
		if o := &all[i]; o.Name != ro.Name && o.DeletionTimestamp == nil {
			if o.Name == owner {
				return o.Name
			}
			live = append(live, o)
		}
	}
	if owner == ro.Name {
		return ""
	}
	for _, o := range live {
		if firstOf(o, ro) {
			return o.Name
		}
	}
	return ""
}

// firstOf says whether a was created before b, so of two Rollouts on one Deployment the
// older keeps it.
func firstOf(a, b *v1alpha1.Rollout) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}
