package rollout

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"

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
