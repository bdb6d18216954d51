package rollout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestRunPhaseChangedPassesOnlyWhatARolloutReads(t *testing.T) {
	run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 1}, Status: v1alpha1.AnalysisRunStatus{Phase: v1alpha1.AnalysisPhaseRunning}}
	measured := run.DeepCopy()
	measured.Status.MetricResults = []v1alpha1.MetricResult{{Name: "m", Count: 1}}
	decided := measured.DeepCopy()
	decided.Status.Phase = v1alpha1.AnalysisPhaseSuccessful
	terminated := run.DeepCopy()
	terminated.Generation = 2
	deleted := run.DeepCopy()
	deleted.DeletionTimestamp = ptr.To(metav1.Now())
	for name, tc := range map[string]struct {
		after *v1alpha1.AnalysisRun
		pass  bool
	}{
		"a measurement": {measured, false},
		"a verdict":     {decided, true},
		"a spec change": {terminated, true},
		"a deletion":    {deleted, true},
	} {
		assert.Equal(t, tc.pass, runPhaseChanged.Update(event.UpdateEvent{ObjectOld: run, ObjectNew: tc.after}), name)
	}
	assert.True(t, runPhaseChanged.Create(event.CreateEvent{Object: run}))
	assert.True(t, runPhaseChanged.Delete(event.DeleteEvent{Object: run}))
}

func TestReplicaSetChangedPassesOnlyWhatARolloutReads(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2)}, Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1}}
	change := func(f func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
		c := rs.DeepCopy()
		f(c)
		return c
	}
	for name, tc := range map[string]struct {
		after *appsv1.ReplicaSet
		pass  bool
	}{
		"conditions": {change(func(c *appsv1.ReplicaSet) {
			c.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: "ReplicaFailure"}}
		}), false},
		"observed generation": {change(func(c *appsv1.ReplicaSet) { c.Status.ObservedGeneration = 3 }), true},
		"fully labelled":      {change(func(c *appsv1.ReplicaSet) { c.Status.FullyLabeledReplicas = 2 }), false},
		"scaled":              {change(func(c *appsv1.ReplicaSet) { c.Spec.Replicas = ptr.To[int32](3) }), true},
		"a pod ready":         {change(func(c *appsv1.ReplicaSet) { c.Status.ReadyReplicas = 2 }), true},
		"a pod available":     {change(func(c *appsv1.ReplicaSet) { c.Status.AvailableReplicas = 1 }), true},
		"a pod created":       {change(func(c *appsv1.ReplicaSet) { c.Status.Replicas = 3 }), true},
		"relabelled":          {change(func(c *appsv1.ReplicaSet) { c.Labels["batch"] = "1" }), true},
		"annotated":           {change(func(c *appsv1.ReplicaSet) { c.Annotations = map[string]string{"a": "b"} }), true},
		"orphaned":            {change(func(c *appsv1.ReplicaSet) { c.OwnerReferences = []metav1.OwnerReference{{Name: "x"}} }), true},
		"deleted":             {change(func(c *appsv1.ReplicaSet) { c.DeletionTimestamp = ptr.To(metav1.Now()) }), true},
	} {
		assert.Equal(t, tc.pass, replicaSetChanged.Update(event.UpdateEvent{ObjectOld: rs, ObjectNew: tc.after}), name)
	}
}
