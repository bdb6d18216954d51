package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels a release puts on the pods of its new revision, so a team can select one batch
// in PromQL (kube-state-metrics' kube_pod_labels, or a relabelled scrape), as OpenKruise
// labels rollouts.kruise.io/rollout-batch-id.
const (
	// LabelRelease names the release: the workload's promgate.io/release-id label when it
	// has one, else the new revision.
	LabelRelease = "promgate.io/release"
	// LabelReleaseBatch is the 1-based step in which the pod joined the release.
	LabelReleaseBatch = "promgate.io/release-batch"
	// LabelReleaseID is the workload label that names its releases.
	LabelReleaseID = "promgate.io/release-id"
)

// releaseID is what LabelRelease says for the release in progress.
func (s *state) releaseID() string {
	if id := s.w.labels()[LabelReleaseID]; id != "" {
		return id
	}
	return s.ro.Status.CanaryRevision
}

// labelBatches labels the new revision's pods that carry no batch yet with the release and
// the step in progress: pods join a release at the step that made them, and a pass sees
// them during that step (it is woken by their workload's status).
func (s *state) labelBatches(ctx context.Context) error {
	st := &s.ro.Status
	if st.CanaryRevision == "" || st.CurrentStepIndex < 1 {
		return nil
	}
	pods, err := s.w.pods(ctx)
	if err != nil {
		return err
	}
	release, batch := s.releaseID(), strconv.Itoa(int(st.CurrentStepIndex))
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Labels[s.w.revisionLabel()] != st.CanaryRevision {
			continue
		}
		if p.Labels[LabelRelease] == release && p.Labels[LabelReleaseBatch] != "" {
			continue
		}
		if err := s.patchLabels(ctx, p, map[string]any{LabelRelease: release, LabelReleaseBatch: batch}); err != nil {
			return err
		}
	}
	return nil
}

// unlabelBatches takes the release labels off every pod of the workload, so the next
// release starts clean.
func (s *state) unlabelBatches(ctx context.Context) error {
	pods, err := s.w.pods(ctx)
	if err != nil {
		return err
	}
	for i := range pods {
		p := &pods[i]
		_, hasRelease := p.Labels[LabelRelease]
		_, hasBatch := p.Labels[LabelReleaseBatch]
		if hasRelease || hasBatch {
			if err := s.patchLabels(ctx, p, map[string]any{LabelRelease: nil, LabelReleaseBatch: nil}); err != nil {
				return err
			}
		}
	}
	return nil
}

// patchLabels merges labels into p's (nil removes one). A pod gone since it was listed
// is no longer the release's.
func (s *state) patchLabels(ctx context.Context, p *corev1.Pod, labels map[string]any) error {
	raw, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return fmt.Errorf("labelling pod %s: %w", p.Name, err)
	}
	if err := s.c.Patch(ctx, p, client.RawPatch(types.MergePatchType, raw)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("labelling pod %s: %w", p.Name, err)
	}
	return nil
}
