package rollout

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// A step's fresh baseline (steps[].baseline): pods of the stable template in a ReplicaSet
// the Rollout owns, "<rollout>-baseline". Their pod-template-hash is derived from the
// stable revision's, so the stable Service (pinned to the stable hash) never selects them,
// no ReplicaSet of the Deployment (each selects its own hash) counts them, and the
// Deployment controller never adopts them (they have a controller). The gateway router
// sends them the canary's share through "<service>-baseline".
//
// status.baselineRevision names them. It is written in a pass before the one that creates
// the ReplicaSet, so no baseline exists that status does not name. Every way out of the
// step goes through dropBaseline, which takes the route off the baseline, deletes its
// Service and ReplicaSet, and only then clears status: the step's end (StepReady, which
// an approval and promote-full reach too), the StepUpgrade of a step without a baseline (a
// jump lands there), an abort, a cancel, a newer template, disable and delete.

// baselineSuffix names a Rollout's baseline ReplicaSet: "<rollout>-baseline". The
// Deployment controller's names end in a hash of consonants and digits, never in it.
const baselineSuffix = "-baseline"

// baselineHash is the pod-template-hash of the baseline pods of stable: a hash of it in the
// Deployment controller's alphabet, so it reads like the revisions beside it.
func baselineHash(stable string) string {
	h := fnv.New32a()
	h.Write([]byte("promgate.io/baseline/" + stable))
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

func baselineName(ro *v1alpha1.Rollout) string { return ro.Name + baselineSuffix }

// stepBaseline runs the baseline of the step in progress, or drops one a step without a
// baseline still has (its spec was edited). A step without one is done at once.
func (s *state) stepBaseline(ctx context.Context, step v1alpha1.RolloutStep, path *field.Path) (stepProgress, error) {
	st := &s.ro.Status
	if step.Baseline == nil {
		return stepProgress{done: true}, s.dropBaseline(ctx)
	}
	want := baselineHash(st.StableRevision)
	if st.BaselineRevision != want {
		// Named in status before it exists, so whatever ends the step finds it.
		st.BaselineRevision = want
		return stepProgress{pods: "baseline", want: step.Baseline.Replicas, waiting: "recording the baseline before its pods start"}, nil
	}
	return s.ensureBaseline(ctx, step.Baseline.Replicas, path.Child("baseline"))
}

// ensureBaseline creates or corrects the baseline ReplicaSet at n pods of the stable
// template, deciding from the API server's copy: a cached one a create behind would
// make a second.
func (s *state) ensureBaseline(ctx context.Context, n int32, path *field.Path) (stepProgress, error) {
	st := &s.ro.Status
	d, ok := s.w.(*deployment)
	if !ok {
		return stepProgress{}, field.Forbidden(path, fmt.Sprintf("a baseline runs beside a Deployment's pods, not a %s's", s.ro.Spec.WorkloadRef.Kind))
	}
	stable := d.revs.byHash[st.StableRevision]
	if stable == nil {
		return stepProgress{}, fmt.Errorf("starting the baseline: Deployment %s has no ReplicaSet of the stable revision %s", d.d.Name, st.StableRevision)
	}
	if _, taken := d.revs.byHash[st.BaselineRevision]; taken {
		return stepProgress{}, fmt.Errorf("starting the baseline: its pod-template-hash %s is a revision of Deployment %s", st.BaselineRevision, d.d.Name)
	}
	p := stepProgress{pods: "baseline", want: n}
	var rs appsv1.ReplicaSet
	key := client.ObjectKey{Namespace: s.ro.Namespace, Name: baselineName(s.ro)}
	err := s.r.APIReader.Get(ctx, key, &rs)
	switch {
	case apierrors.IsNotFound(err):
		want, err := s.baselineReplicaSet(d, stable, n)
		if err != nil {
			return p, err
		}
		if err := s.c.Create(ctx, want); err != nil {
			return p, fmt.Errorf("creating the baseline ReplicaSet %s: %w", key.Name, err)
		}
		return p, nil
	case err != nil:
		return p, fmt.Errorf("reading the baseline ReplicaSet %s: %w", key.Name, err)
	case !metav1.IsControlledBy(&rs, s.ro):
		return p, field.Forbidden(path, fmt.Sprintf("ReplicaSet %q exists and was not created by this Rollout; the baseline needs that name", key.Name))
	case rs.DeletionTimestamp != nil:
		p.waiting = "waiting for the previous baseline ReplicaSet to be deleted"
		return p, nil
	case rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != st.BaselineRevision:
		// Another release's: its selector cannot change, so it goes and the next pass
		// creates this one.
		p.waiting = "replacing the previous baseline ReplicaSet"
		return p, s.deleteBaselineReplicaSet(ctx, &rs)
	case ptr.Deref(rs.Spec.Replicas, 1) != n:
		patch := client.MergeFromWithOptions(rs.DeepCopy(), client.MergeFromWithOptimisticLock{})
		rs.Spec.Replicas = ptr.To(n)
		if err := s.c.Patch(ctx, &rs, patch); err != nil {
			return p, fmt.Errorf("scaling the baseline ReplicaSet %s to %d: %w", key.Name, n, err)
		}
		return p, nil
	}
	p.ready = rs.Status.ReadyReplicas
	p.done = rs.Status.ObservedGeneration >= rs.Generation && rs.Status.Replicas == n && p.ready >= n
	return p, nil
}

// baselineReplicaSet is the baseline ReplicaSet of d: n pods of the stable ReplicaSet's
// template under the baseline's hash, selected by the Deployment's selector and that hash.
func (s *state) baselineReplicaSet(d *deployment, stable *appsv1.ReplicaSet, n int32) (*appsv1.ReplicaSet, error) {
	hash := s.ro.Status.BaselineRevision
	tmpl := *stable.Spec.Template.DeepCopy()
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	labels := map[string]string{traffic.LabelRollout: s.ro.Name}
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ro.Namespace, Name: baselineName(s.ro), Labels: labels},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To(n), Selector: sel, Template: tmpl},
	}
	if err := controllerutil.SetControllerReference(s.ro, rs, s.c.Scheme()); err != nil {
		return nil, fmt.Errorf("owning the baseline ReplicaSet by Rollout %s: %w", s.ro.Name, err)
	}
	return rs, nil
}

// dropBaseline ends the baseline status names, if any: the routes give its share back
// to the stable version first, then its Service and ReplicaSet go, and status forgets it
// last, so a pass cut short anywhere leaves it named for the next one.
func (s *state) dropBaseline(ctx context.Context) error {
	st := &s.ro.Status
	if st.BaselineRevision == "" {
		return nil
	}
	for _, rt := range s.routers() {
		if br, ok := rt.(traffic.BaselineRouter); ok {
			if err := br.DropBaseline(ctx); err != nil {
				return fmt.Errorf("taking traffic off the baseline: %w", err)
			}
		}
	}
	var rs appsv1.ReplicaSet
	err := s.r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: baselineName(s.ro)}, &rs)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading the baseline ReplicaSet %s: %w", baselineName(s.ro), err)
	case metav1.IsControlledBy(&rs, s.ro):
		if err := s.deleteBaselineReplicaSet(ctx, &rs); err != nil {
			return err
		}
	}
	st.BaselineRevision = ""
	return nil
}

// deleteBaselineReplicaSet deletes rs and, in the background, its pods.
func (s *state) deleteBaselineReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet) error {
	err := s.c.Delete(ctx, rs, client.Preconditions{UID: &rs.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the baseline ReplicaSet %s: %w", rs.Name, err)
	}
	return nil
}
