package rollout

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/rollout/traffic"
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
		if step.Baseline != nil {
			validateBaseline(&errs, ro, st, int32(i+1), p.Child("baseline"), path.Child("trafficRoutings"))
		}
	}
	return errs.Err()
}

// validateBaseline checks a step's baseline against what can run and route it: a
// Deployment's pods, Gateway API routes only, and room for the canary's share twice.
func validateBaseline(errs *fielderr.List, ro *v1alpha1.Rollout, st *v1alpha1.ReleaseStrategy, step int32, p, routings *field.Path) {
	b := st.Steps[step-1].Baseline
	if b.Replicas < 1 {
		errs.Add(field.Invalid(p.Child("replicas"), b.Replicas, fmt.Sprintf("%d baseline pods: a baseline has at least 1", b.Replicas)))
	}
	if ro.Spec.WorkloadRef.Kind == "StatefulSet" {
		errs.Add(field.Forbidden(p, "a baseline runs pods of the stable template beside a Deployment's; a StatefulSet's pods are its ordinals"))
	}
	if len(st.TrafficRoutings) == 0 {
		errs.Add(field.Forbidden(p, fmt.Sprintf("a baseline gets the canary's share of traffic, which needs a gateway entry in %s", routings)))
	}
	for i, tr := range st.TrafficRoutings {
		if tr.Gateway == nil {
			errs.Add(field.Forbidden(p, fmt.Sprintf("a baseline is routed by Gateway API HTTPRoutes only, and %s is not a gateway routing", routings.Index(i))))
		} else if name := tr.Service + traffic.BaselineSuffix; len(validation.IsDNS1035Label(name)) > 0 {
			errs.Add(field.Invalid(routings.Index(i).Child("service"), tr.Service, fmt.Sprintf("the baseline's generated Service %q is not a valid name: %s", name, strings.Join(validation.IsDNS1035Label(name), "; "))))
		}
	}
	if w, err := TrafficAt(st.Steps, step); err == nil && 2*w > 100 {
		errs.Add(field.Invalid(p, fmt.Sprintf("%d%% traffic", w), fmt.Sprintf("the baseline takes the canary's %d%% as well, and twice %d%% is more than all the traffic; at most 50%%", w, w)))
	}
}

// validateBaselineReplicas checks each step's baseline against the Deployment's size: the
// baseline is a sample of the stable version, never more than all of it.
func validateBaselineReplicas(ro *v1alpha1.Rollout, w workload) error {
	d, ok := w.(*deployment)
	if !ok {
		return nil
	}
	var errs fielderr.List
	st, path := ro.Spec.Strategy.Active()
	n := ptr.Deref(d.d.Spec.Replicas, 1)
	for i, step := range st.Steps {
		if b := step.Baseline; b != nil && b.Replicas > n {
			errs.Add(field.Invalid(path.Child("steps").Index(i).Child("baseline", "replicas"), b.Replicas,
				fmt.Sprintf("%d baseline pods are more than the %d replicas of Deployment %s", b.Replicas, n, d.d.Name)))
		}
	}
	return errs.Err()
}
