package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestStepPartition(t *testing.T) {
	for _, tc := range []struct {
		n             int32
		replicas      string
		partition, at int32
	}{
		{5, "1", 4, 1},
		{5, "40%", 3, 2},
		{5, "50%", 2, 3}, // 2.5 rounds up: the highest three ordinals
		{5, "100%", 0, 5},
		{5, "0", 5, 0},
		{5, "9", 0, 5}, // a count over the size takes them all
		{8, "40%", 4, 4},
		{3, "40%", 1, 2},
		{1, "1%", 0, 1},
		{0, "50%", 0, 0},
	} {
		partition, want, err := stepPartition(tc.n, ptr.To(intstr.Parse(tc.replicas)))
		require.NoError(t, err)
		assert.Equal(t, tc.partition, partition, "%d replicas at %s: partition", tc.n, tc.replicas)
		assert.Equal(t, tc.at, want, "%d replicas at %s: new pods", tc.n, tc.replicas)
		assert.Equal(t, tc.n, partition+want, "every pod is on one side of the partition")
	}
}

const (
	oldRev = "db-6b8f7c5d9"
	newRev = "db-7c9d8e6f5"
)

// fakeStatefulSet is StatefulSet db of n replicas, updateRevision rev, adopted by Rollout
// web, with its pods: ordinals listed in onNew run rev, the others oldRev, all Ready.
func fakeStatefulSet(t *testing.T, n int32, partition int32, onNew ...int32) []client.Object {
	t.Helper()
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "db", UID: "sts-uid", Generation: 2,
			Annotations: map[string]string{managedByAnnotation: "web",
				originalAnnotation: `{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}}}`}},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(partition)}},
		},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, CurrentRevision: oldRev, UpdateRevision: newRev, Replicas: n, ReadyReplicas: n},
	}
	objs := []client.Object{s}
	for i := range n {
		rev := oldRev
		for _, o := range onNew {
			if o == i {
				rev = newRev
			}
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: fmt.Sprintf("db-%d", i), UID: "pod-uid",
				Labels:          map[string]string{"app": "db", appsv1.ControllerRevisionHashLabelKey: rev, appsv1.PodIndexLabel: fmt.Sprint(i)},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
		objs = append(objs, p)
	}
	return objs
}

func stsWorkload(t *testing.T, k *fakeCluster) *statefulSet {
	t.Helper()
	ro := fakeRollout(nil, v1alpha1.RolloutStatus{})
	ro.Spec.WorkloadRef = v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}
	w, err := loadStatefulSet(context.Background(), k.r.Client, k.api, ro)
	require.NoError(t, err)
	require.NotNil(t, w)
	return w
}

func (k *fakeCluster) partition() int32 {
	k.t.Helper()
	var s appsv1.StatefulSet
	require.NoError(k.t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "db"}, &s))
	return *s.Spec.UpdateStrategy.RollingUpdate.Partition
}

func (k *fakeCluster) podNames() []string {
	k.t.Helper()
	var list corev1.PodList
	require.NoError(k.t, k.api.List(context.Background(), &list, client.InNamespace(fakeNS)))
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

func TestStatefulSetSteps(t *testing.T) {
	ctx := context.Background()
	one, forty := ptr.To(intstr.Parse("1")), ptr.To(intstr.Parse("40%"))

	t.Run("a step lowers the partition and waits for the new pods", func(t *testing.T) {
		k := newFakeCluster(t, fakeStatefulSet(t, 5, holdPartition)...)
		p, err := stsWorkload(t, k).step(ctx, oldRev, forty)
		require.NoError(t, err)
		assert.Equal(t, int32(3), k.partition(), "40%% of 5 rounds up to 2: ordinals 3 and 4")
		assert.Equal(t, stepProgress{want: 2, ready: 0}, p, "no pod moved yet")

		k = newFakeCluster(t, fakeStatefulSet(t, 5, 3, 3, 4)...)
		p, err = stsWorkload(t, k).step(ctx, oldRev, forty)
		require.NoError(t, err)
		assert.Equal(t, stepProgress{want: 2, ready: 2, done: true}, p)
	})

	t.Run("scaled up mid-step, the partition follows and a pod made new too early goes back", func(t *testing.T) {
		// 5 -> 8 at step 1: pods 5-7 were created while the partition was still 4.
		k := newFakeCluster(t, fakeStatefulSet(t, 8, 4, 4, 5, 6, 7)...)
		p, err := stsWorkload(t, k).step(ctx, oldRev, one)
		require.NoError(t, err)
		assert.Equal(t, int32(7), k.partition(), "one new pod of 8: ordinal 7")
		assert.False(t, p.done)
		assert.Contains(t, p.waiting, "bringing 3 pods below ordinal 7 back")
		assert.NotContains(t, k.podNames(), "db-6", "the highest wrong pod is deleted first")
		assert.Len(t, k.podNames(), 7, "and only one at a time")

		// Next pass: db-6 has not come back yet, so nothing else goes.
		_, err = stsWorkload(t, k).step(ctx, oldRev, one)
		require.NoError(t, err)
		assert.Len(t, k.podNames(), 7, "db-5 waits for db-6 to come back")
	})

	t.Run("a pod coming back is waited for", func(t *testing.T) {
		objs := fakeStatefulSet(t, 5, 4, 2, 3, 4)
		// db-2 is being recreated: not Ready yet.
		objs[3].(*corev1.Pod).Status.Conditions[0].Status = corev1.ConditionFalse
		objs[3].(*corev1.Pod).Labels[appsv1.ControllerRevisionHashLabelKey] = oldRev
		k := newFakeCluster(t, objs...)
		_, err := stsWorkload(t, k).step(ctx, oldRev, one)
		require.NoError(t, err)
		assert.Len(t, k.podNames(), 5, "db-3 waits for db-2 to be Ready")
	})

	t.Run("an abort with abortScaleDown raises the partition and brings the new pods back", func(t *testing.T) {
		objs := fakeStatefulSet(t, 5, 3, 3, 4)
		// A failing canary is never Ready: its pods are brought back all the same.
		objs[5].(*corev1.Pod).Status.Conditions[0].Status = corev1.ConditionFalse
		k := newFakeCluster(t, objs...)
		require.NoError(t, stsWorkload(t, k).freeze(ctx, oldRev, true))
		assert.Equal(t, int32(holdPartition), k.partition())
		assert.NotContains(t, k.podNames(), "db-4")
		assert.Contains(t, k.podNames(), "db-3")

		k = newFakeCluster(t, fakeStatefulSet(t, 5, 3, 3, 4)...)
		require.NoError(t, stsWorkload(t, k).freeze(ctx, oldRev, false))
		assert.Equal(t, int32(3), k.partition(), "kept for diagnosis")
		assert.Len(t, k.podNames(), 5)
	})

	t.Run("finish and restore give the update strategy back", func(t *testing.T) {
		k := newFakeCluster(t, fakeStatefulSet(t, 5, 3, 3, 4)...)
		require.NoError(t, stsWorkload(t, k).finish(ctx))
		assert.Equal(t, int32(0), k.partition(), "the StatefulSet controller rolls the rest")
		require.NoError(t, stsWorkload(t, k).adopt(ctx))
		assert.Equal(t, int32(holdPartition), k.partition(), "adopted again: held")
		require.NoError(t, stsWorkload(t, k).restore(ctx))
		var s appsv1.StatefulSet
		require.NoError(t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: "db"}, &s))
		assert.Equal(t, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)}}, s.Spec.UpdateStrategy)
		assert.NotContains(t, s.Annotations, originalAnnotation)
		assert.NotContains(t, s.Annotations, managedByAnnotation)
	})

	t.Run("OnDelete is refused", func(t *testing.T) {
		objs := fakeStatefulSet(t, 5, 0)
		objs[0].(*appsv1.StatefulSet).Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		assert.ErrorContains(t, checkUpdateStrategy(objs[0].(*appsv1.StatefulSet)), "OnDelete")
	})
}

func TestReleaseBatchLabels(t *testing.T) {
	ctx := context.Background()
	labels := func(k *fakeCluster, name string) map[string]string {
		var p corev1.Pod
		require.NoError(t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: name}, &p))
		return p.Labels
	}
	d := fakeDeployment(5, green)
	hold(d, 3, false)
	d.Labels = map[string]string{LabelReleaseID: "shop-2026-12"}
	stableRS, canaryRS := fakeReplicaSet(d, blue, 5, 1), fakeReplicaSet(d, green, 3, 2)
	k := newFakeCluster(t, d, stableRS, canaryRS,
		fakePod(stableRS, "web-blue-a", nil),
		fakePod(canaryRS, "web-green-a", map[string]string{LabelRelease: "shop-2026-12", LabelReleaseBatch: "1"}),
		fakePod(canaryRS, "web-green-b", nil),
		fakePod(canaryRS, "web-green-c", nil),
		stored(t, fakeRollout(threeSteps(time.Minute), at(2, v1alpha1.StepUpgrade))))
	k.reconcile()
	assert.Equal(t, "1", labels(k, "web-green-a")[LabelReleaseBatch], "a pod keeps the step it joined in")
	for _, name := range []string{"web-green-b", "web-green-c"} {
		assert.Equal(t, "2", labels(k, name)[LabelReleaseBatch], name)
		assert.Equal(t, "shop-2026-12", labels(k, name)[LabelRelease], "%s: the workload's release-id names the release", name)
	}
	assert.NotContains(t, labels(k, "web-blue-a"), LabelReleaseBatch, "stable pods are in no batch")

	// Settled, no pod carries them any more.
	d = fakeDeployment(5, green)
	d.Spec.Paused = false
	stableRS, canaryRS = fakeReplicaSet(d, blue, 0, 1), fakeReplicaSet(d, green, 5, 2)
	k = newFakeCluster(t, d, stableRS, canaryRS,
		fakePod(canaryRS, "web-green-a", map[string]string{LabelRelease: green, LabelReleaseBatch: "1"}),
		fakePod(canaryRS, "web-green-b", map[string]string{LabelRelease: green, LabelReleaseBatch: "3"}),
		stored(t, fakeRollout(threeSteps(time.Minute), with(at(3, v1alpha1.StepCompleted), func(st *v1alpha1.RolloutStatus) {
			st.Phase = v1alpha1.RolloutPhaseCompleted
		}))))
	k.reconcile()
	require.Equal(t, green, k.rollout().Status.StableRevision, "settled")
	for _, name := range []string{"web-green-a", "web-green-b"} {
		assert.NotContains(t, labels(k, name), LabelRelease, name)
		assert.NotContains(t, labels(k, name), LabelReleaseBatch, name)
	}
}
