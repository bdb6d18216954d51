package rollout

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// hpaTargetAnnotation keeps the Deployment an HPA scaled while the release disables it.
	hpaTargetAnnotation = "promgate.io/original-scale-target"
	// hpaDisabledSuffix points a disabled HPA at nothing, as Kruise does: an HPA that
	// changed replicas mid-release would move the surge the release relies on.
	hpaDisabledSuffix = "-disabled-by-promgate"
)

// setHPAs disables (or re-enables) every HPA in the namespace that scales the Deployment.
func (s *state) setHPAs(ctx context.Context, disabled bool) error {
	var list autoscalingv2.HorizontalPodAutoscalerList
	if err := s.c.List(ctx, &list, client.InNamespace(s.ro.Namespace)); err != nil {
		return fmt.Errorf("listing HorizontalPodAutoscalers: %w", err)
	}
	name := s.ro.Spec.WorkloadRef.Name
	for i := range list.Items {
		h := &list.Items[i]
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != s.w.scaleTargetKind() {
			continue
		}
		isOurs := ref.Name == name
		isDisabled := h.Annotations[hpaTargetAnnotation] == name
		if (disabled && !isOurs) || (!disabled && !isDisabled) {
			continue
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := s.c.Get(ctx, client.ObjectKeyFromObject(h), h); err != nil {
				return err
			}
			if disabled {
				if h.Annotations == nil {
					h.Annotations = map[string]string{}
				}
				h.Annotations[hpaTargetAnnotation] = name
				h.Spec.ScaleTargetRef.Name = name + hpaDisabledSuffix
			} else {
				h.Spec.ScaleTargetRef.Name = h.Annotations[hpaTargetAnnotation]
				delete(h.Annotations, hpaTargetAnnotation)
			}
			return s.c.Update(ctx, h)
		})
		if err != nil {
			return fmt.Errorf("updating HorizontalPodAutoscaler %s: %w", h.Name, client.IgnoreNotFound(err))
		}
	}
	return nil
}
