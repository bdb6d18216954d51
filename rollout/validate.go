package rollout

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

func fieldErr(field, format string, args ...any) error {
	return &traffic.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// validateSpec checks what the CRD schema cannot: replicas ranges, traffic that never
// goes back, and the strategy's presence for objects written before validation existed.
func validateSpec(ro *v1alpha1.Rollout) error {
	if ro.Spec.WorkloadRef.APIVersion != "apps/v1" || ro.Spec.WorkloadRef.Kind != "Deployment" {
		return fieldErr("spec.workloadRef", "%s %s is not supported: only apps/v1 Deployment", ro.Spec.WorkloadRef.APIVersion, ro.Spec.WorkloadRef.Kind)
	}
	st, field := ro.Spec.Strategy.Active()
	if st == nil || len(st.Steps) == 0 {
		return fieldErr("spec.strategy", "exactly one of blueGreen and canary with at least one step is required")
	}
	for i, step := range st.Steps {
		f := fmt.Sprintf("%s.steps[%d]", field, i)
		if step.Replicas != nil {
			switch step.Replicas.Type {
			case intstr.Int:
				if step.Replicas.IntVal < 0 {
					return fieldErr(f+".replicas", "%d is negative", step.Replicas.IntVal)
				}
			case intstr.String:
				pct, ok := strings.CutSuffix(step.Replicas.StrVal, "%")
				n, err := strconv.Atoi(pct)
				if !ok || err != nil || n < 0 || n > 100 {
					return fieldErr(f+".replicas", "%q is not a count or a percentage from 0%% to 100%%", step.Replicas.StrVal)
				}
			}
		}
		if step.Traffic != nil {
			if _, err := parsePercent(*step.Traffic); err != nil {
				return fieldErr(f+".traffic", "%v", err)
			}
		}
		if (step.Traffic != nil || len(step.Matches) > 0) && len(st.TrafficRoutings) == 0 {
			return fieldErr(f+".traffic", "traffic needs at least one entry in %s.trafficRoutings", field)
		}
		if step.Pause != nil && step.Pause.Duration != nil && step.Pause.Duration.Duration < 0 {
			return fieldErr(f+".pause.duration", "%s is negative", step.Pause.Duration.Duration)
		}
	}
	return nil
}

func parsePercent(s string) (int32, error) {
	v, ok := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
	}
	return int32(n), nil
}

// load reads the Deployment and checks the references: the Deployment exists, no other
// Rollout releases it, and every traffic routing's objects can carry the steps.
func (s *state) load(ctx context.Context) error {
	if err := validateSpec(s.ro); err != nil {
		return err
	}
	if err := s.loadGates(); err != nil {
		return err
	}
	ref := s.ro.Spec.WorkloadRef
	var d appsv1.Deployment
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: ref.Name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return fieldErr("spec.workloadRef.name", "Deployment %q not found in namespace %s", ref.Name, s.ro.Namespace)
		}
		return fmt.Errorf("reading Deployment %s: %w", ref.Name, err)
	}
	s.d = &d
	var others v1alpha1.RolloutList
	if err := s.c.List(ctx, &others, client.InNamespace(s.ro.Namespace), client.MatchingFields{workloadIndex: ref.Name}); err != nil {
		return fmt.Errorf("listing Rollouts of Deployment %s: %w", ref.Name, err)
	}
	for _, o := range others.Items {
		if o.Name != s.ro.Name && o.DeletionTimestamp == nil && firstOf(&o, s.ro) {
			return fieldErr("spec.workloadRef.name", "Deployment %q is already released by Rollout %q", ref.Name, o.Name)
		}
	}
	revs, err := readRevisions(ctx, s.c, &d)
	if err != nil {
		return err
	}
	s.revs = revs
	_, field := s.ro.Spec.Strategy.Active()
	for _, rt := range s.routers() {
		if err := rt.Validate(ctx, s.steps(), field+".steps"); err != nil {
			return err
		}
	}
	return nil
}

// firstOf says whether a was created before b, so of two Rollouts on one Deployment the
// older keeps it.
func firstOf(a, b *v1alpha1.Rollout) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}
