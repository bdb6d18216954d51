package rollout

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/promgate/promgate/api/v1alpha1"
)

// runPhaseChanged passes the AnalysisRun updates a Rollout acts on: a new phase, spec or
// deletion. Every measurement writes its run's status; one that leaves the phase as it was
// changes nothing a Rollout reads, and at a thousand releases those writes woke most of
// the Rollouts' reconciles.
var runPhaseChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	before, ok := e.ObjectOld.(*v1alpha1.AnalysisRun)
	after, ok2 := e.ObjectNew.(*v1alpha1.AnalysisRun)
	if !ok || !ok2 {
		return true
	}
	return before.Status.Phase != after.Status.Phase || before.Generation != after.Generation ||
		!before.DeletionTimestamp.Equal(after.DeletionTimestamp)
}}

// replicaSetChanged passes the ReplicaSet updates a Rollout acts on: its size, its
// controller catching up with it (a step waits for the observed generation), how many of
// its pods run and are ready or available, its labels, annotations and owners, its
// deletion. The rest (conditions, fully labelled replicas) moves nothing in a release.
var replicaSetChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	before, ok := e.ObjectOld.(*appsv1.ReplicaSet)
	after, ok2 := e.ObjectNew.(*appsv1.ReplicaSet)
	if !ok || !ok2 {
		return true
	}
	b, a := before.Status, after.Status
	return !equality.Semantic.DeepEqual(before.Spec.Replicas, after.Spec.Replicas) ||
		b.ObservedGeneration != a.ObservedGeneration ||
		b.Replicas != a.Replicas || b.ReadyReplicas != a.ReadyReplicas || b.AvailableReplicas != a.AvailableReplicas ||
		!equality.Semantic.DeepEqual(before.Labels, after.Labels) ||
		!equality.Semantic.DeepEqual(before.Annotations, after.Annotations) ||
		!equality.Semantic.DeepEqual(before.OwnerReferences, after.OwnerReferences) ||
		!before.DeletionTimestamp.Equal(after.DeletionTimestamp)
}}
