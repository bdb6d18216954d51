package rollout

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
)

// validateSpec checks what the CRD schema cannot: replicas ranges, traffic that never
// goes back, and the strategy's presence for objects written before validation existed.
// It returns every problem at once (fielderr), each a *field.Error.
func validateSpec(ro *v1alpha1.Rollout) error {
	var errs fielderr.List
	ref := ro.Spec.WorkloadRef
	if ref.APIVersion != "apps/v1" || (ref.Kind != "Deployment" && ref.Kind != "StatefulSet") {
		errs.Add(field.NotSupported(field.NewPath("spec", "workloadRef"), ref.APIVersion+" "+ref.Kind, []string{"apps/v1 Deployment", "apps/v1 StatefulSet"}))
	}
	if ref.Kind == "StatefulSet" && ro.Spec.Strategy.BlueGreen != nil {
		errs.Add(field.Forbidden(field.NewPath("spec", "strategy", "blueGreen"),
			"a StatefulSet cannot run two full sets of pods under one name; release it with canary steps"))
	}
	st, path := ro.Spec.Strategy.Active()
	switch {
	case st == nil:
		errs.Add(field.Required(path, "exactly one of blueGreen and canary"))
		return errs.Err()
	case len(st.Steps) == 0:
		errs.Add(field.Required(path.Child("steps"), "at least one step"))
		return errs.Err()
	}
	for i, step := range st.Steps {
		p := path.Child("steps").Index(i)
		if r := step.Replicas; r != nil {
			switch r.Type {
			case intstr.Int:
				if r.IntVal < 0 {
					errs.Add(field.Invalid(p.Child("replicas"), r.IntVal, fmt.Sprintf("%d is negative: a count of pods is at least 0", r.IntVal)))
				}
			case intstr.String:
				if _, err := v1alpha1.ParsePercent(r.StrVal); err != nil || !strings.HasSuffix(r.StrVal, "%") {
					errs.Add(field.Invalid(p.Child("replicas"), r.StrVal, fmt.Sprintf("%q is not a count or a percentage from 0%% to 100%%", r.StrVal)))
				}
			}
		}
		if step.Traffic != nil {
			if _, err := v1alpha1.ParsePercent(*step.Traffic); err != nil {
				errs.Add(field.Invalid(p.Child("traffic"), *step.Traffic, err.Error()))
			}
		}
		if len(st.TrafficRoutings) == 0 {
			need := fmt.Sprintf("moving traffic needs at least one entry in %s", path.Child("trafficRoutings"))
			switch {
			case step.Traffic != nil:
				errs.Add(field.Invalid(p.Child("traffic"), *step.Traffic, need))
			case len(step.Matches) > 0:
				errs.Add(field.Invalid(p.Child("matches"), step.Matches, need))
			}
		}
		if step.Pause != nil && step.Pause.Duration != nil && step.Pause.Duration.Duration < 0 {
			errs.Add(field.Invalid(p.Child("pause", "duration"), step.Pause.Duration.Duration.String(), fmt.Sprintf("%s is negative", step.Pause.Duration.Duration)))
		}
	}
	return errs.Err()
}
