package rollout

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
)

// stored is obj as the API server stores and returns it: through its JSON form.
func stored[T any](t *testing.T, obj *T) *T {
	t.Helper()
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal(raw, &out))
	return &out
}

// A reconcile that reads the Rollout from a cache one transition behind (the completion
// written, the cache still at the last step's StepUpgrade) must not hold the released
// Deployment again: its new pods would never become available and the release would
// never settle.
func TestACompletedReleaseIsNeverHeldAgainFromAStaleCache(t *testing.T) {
	d := fakeDeployment(5, green)
	_, err := release(d, true)
	require.NoError(t, err)
	completed := fakeRollout(threeSteps(time.Second), v1alpha1.RolloutStatus{
		Phase: v1alpha1.RolloutPhaseCompleted, CurrentStepIndex: 3, CurrentStepState: v1alpha1.StepCompleted,
		StableRevision: blue, CanaryRevision: green,
	})
	k := newFakeCluster(t, d, fakeReplicaSet(d, blue, 0, 1), fakeReplicaSet(d, green, 5, 2), completed)
	fresh := k.rollout()
	older, err := strconv.Atoi(fresh.ResourceVersion)
	require.NoError(t, err)
	stale := fresh.DeepCopy()
	stale.ResourceVersion = strconv.Itoa(older - 1)
	stale.Status.Phase, stale.Status.CurrentStepState = v1alpha1.RolloutPhaseProgressing, v1alpha1.StepUpgrade
	k.cached = func(key client.ObjectKey, obj client.Object) (bool, error) {
		ro, ok := obj.(*v1alpha1.Rollout)
		if ok {
			stale.DeepCopyInto(ro)
		}
		return ok, nil
	}
	before := k.deployment()

	res := k.reconcile()
	assert.Equal(t, staleRetry, res.RequeueAfter, "the pass ends and looks again")
	after := k.deployment()
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing was written to the Deployment: %s", describe(after))
	assert.Equal(t, fresh.Status, k.rollout().Status, "nor to the Rollout")

	k.cached = nil
	k.reconcile()
	ro := k.rollout()
	assert.Equal(t, green, ro.Status.StableRevision, "with the cache caught up, the release settles")
	assert.Empty(t, ro.Status.CanaryRevision)
	d = k.deployment()
	assert.True(t, d.Spec.Paused, "adopted again")
	assert.Equal(t, userStrategy(), d.Spec.Strategy, "with the user's strategy")
}

// Were a hold written after the completion anyway (by a controller of an older version,
// say), settling undoes it instead of waiting forever for pods that never become
// available.
func TestSettleUndoesAHoldThatRacedTheCompletion(t *testing.T) {
	d := fakeDeployment(5, green)
	hold(d, 5, false)
	d.Status.Replicas, d.Status.AvailableReplicas = 10, 5
	completed := fakeRollout(threeSteps(time.Second), v1alpha1.RolloutStatus{
		Phase: v1alpha1.RolloutPhaseCompleted, CurrentStepIndex: 3, CurrentStepState: v1alpha1.StepCompleted,
		StableRevision: blue, CanaryRevision: green,
	})
	k := newFakeCluster(t, d, fakeReplicaSet(d, blue, 5, 1), fakeReplicaSet(d, green, 5, 2), completed)
	k.reconcile()
	d = k.deployment()
	assert.Equal(t, userStrategy(), d.Spec.Strategy, "the user's strategy is back: %s", describe(d))
	assert.Zero(t, d.Spec.MinReadySeconds)
	assert.False(t, d.Spec.Paused, "the Deployment controller scales the old version away")
	assert.Equal(t, green, k.rollout().Status.CanaryRevision, "settling waits for it")
}

// A pause counts from a start the API server keeps to the microsecond: counted from a
// whole second, a 6 s pause entered at 10.9 s would end at 16.0 s, 0.9 s early.
func TestATimedPauseNeverEndsEarly(t *testing.T) {
	const pause = 6 * time.Second
	d := fakeDeployment(5, green)
	hold(d, 3, false)
	k := newFakeCluster(t)
	entered := k.now
	paused := fakeRollout(threeSteps(pause), v1alpha1.RolloutStatus{
		Phase: v1alpha1.RolloutPhaseProgressing, CurrentStepIndex: 2, CurrentStepState: v1alpha1.StepPaused,
		StableRevision: blue, CanaryRevision: green, StepStartedAt: &metav1.MicroTime{Time: entered},
		Steps: []v1alpha1.StepRecord{{Index: 1, StartedAt: metav1.NewTime(entered.Add(-time.Minute)), EndedAt: &metav1.Time{Time: entered}}, {Index: 2, StartedAt: metav1.NewTime(entered)}},
	})
	k = newFakeCluster(t, d, fakeReplicaSet(d, blue, 5, 1), fakeReplicaSet(d, green, 3, 2), stored(t, paused))

	k.now = entered.Add(pause - 600*time.Millisecond)
	res := k.reconcile()
	ro := k.rollout()
	assert.Equal(t, v1alpha1.StepPaused, ro.Status.CurrentStepState, "still paused %s in", k.now.Sub(entered))
	assert.Equal(t, int32(2), ro.Status.CurrentStepIndex)
	assert.InDelta(t, float64(600*time.Millisecond), float64(res.RequeueAfter), float64(time.Microsecond), "back when the pause ends")

	k.now = entered.Add(pause)
	k.reconcile()
	ro = k.rollout()
	assert.Equal(t, int32(3), ro.Status.CurrentStepIndex, "the pause ended on time")
	assert.Equal(t, v1alpha1.StepUpgrade, ro.Status.CurrentStepState)
	assert.True(t, ro.Status.StepStartedAt.Equal(&metav1.MicroTime{Time: k.now}), "the next state starts at its pass, to the microsecond")
}

// A sharded controller owns a Rollout's runs only if they carry the Rollout's values of
// the shard's label keys.
func TestRunsCarryTheShardLabels(t *testing.T) {
	ro := fakeRollout(threeSteps(time.Second), v1alpha1.RolloutStatus{CanaryRevision: green})
	ro.Labels = map[string]string{"promgate.io/shard": "a", "team": "shop"}
	s := &state{r: &Reconciler{ShardLabels: []string{"promgate.io/shard", "region"}}, ro: ro}
	assert.Equal(t, map[string]string{
		runLabel: "web", "promgate.io/analysis": "step", "promgate.io/revision": green, "promgate.io/shard": "a",
	}, s.runLabels("step"))
}

// Of two Rollouts on one Deployment, the one that took it over keeps it, even when the
// other was created in the same second with a name that sorts first (creation times have
// whole seconds, so age alone cannot tell them apart); and a reconcile whose cached
// Deployment predates the takeover writes nothing.
func TestTheRolloutThatTookTheDeploymentKeepsIt(t *testing.T) {
	d := fakeDeployment(5, blue)
	web := fakeRollout(threeSteps(time.Second), v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPhaseHealthy, StableRevision: blue})
	created := metav1.NewTime(time.Date(2026, 12, 1, 2, 0, 10, 0, time.UTC))
	web.CreationTimestamp = created
	another := fakeRollout(threeSteps(time.Second), v1alpha1.RolloutStatus{})
	another.Name, another.UID, another.CreationTimestamp = "another", "another-uid", created
	reconcileAnother := func(k *fakeCluster) reconcile.Result {
		t.Helper()
		res, err := k.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(another)})
		require.NoError(t, err)
		return res
	}

	t.Run("refused", func(t *testing.T) {
		k := newFakeCluster(t, d, fakeReplicaSet(d, blue, 5, 1), web, another)
		reconcileAnother(k)
		var ro v1alpha1.Rollout
		require.NoError(t, k.api.Get(context.Background(), client.ObjectKeyFromObject(another), &ro))
		cond := apimeta.FindStatusCondition(ro.Status.Conditions, ConditionValid)
		require.NotNil(t, cond)
		assert.Equal(t, metav1.ConditionFalse, cond.Status)
		assert.Contains(t, cond.Message, `spec.workloadRef.name: Invalid value: "web": Deployment "web" is already released by Rollout "web"`)
		assert.Equal(t, "web", k.deployment().Annotations[managedByAnnotation])
	})

	t.Run("stale cache", func(t *testing.T) {
		k := newFakeCluster(t, d, fakeReplicaSet(d, blue, 5, 1), web, another)
		unadopted := fakeDeployment(5, blue)
		unadopted.Annotations, unadopted.Spec.Paused, unadopted.Spec.Strategy = nil, false, userStrategy()
		k.cached = func(key client.ObjectKey, obj client.Object) (bool, error) {
			if dd, ok := obj.(*appsv1.Deployment); ok {
				unadopted.DeepCopyInto(dd)
				dd.ResourceVersion = "1"
				return true, nil
			}
			return false, nil
		}
		before := k.deployment().ResourceVersion
		for range 3 {
			res := reconcileAnother(k)
			assert.Positive(t, res.RequeueAfter, "it comes back to decide from a fresh view")
		}
		assert.Equal(t, "web", k.deployment().Annotations[managedByAnnotation], "the owner keeps its Deployment")
		assert.Equal(t, before, k.deployment().ResourceVersion, "only the stale view's write was tried, and it conflicted")
	})
}

// The error names the Rollout that holds the workload, not an older one that never took
// it; age decides only between Rollouts none of which took it.
func TestReleaserNamesTheOwner(t *testing.T) {
	at := func(name string, sec int) v1alpha1.Rollout {
		return v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 1, 2, 0, sec, 0, time.UTC))}}
	}
	gone := at("gone", 0)
	gone.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	all := []v1alpha1.Rollout{at("older-invalid", 1), at("owner", 2), at("me", 3), at("younger", 4), gone}
	me := &all[2]
	for _, tc := range []struct {
		name, owner, want string
	}{
		{"held by another", "owner", "owner"},
		{"held by me", "me", ""},
		{"held by none: the oldest live one", "", "older-invalid"},
		{"held by a Rollout that is gone: the oldest live one", "vanished", "older-invalid"},
		{"held by one being deleted: the oldest live one", "gone", "older-invalid"},
	} {
		assert.Equal(t, tc.want, releaser(tc.owner, me, all), tc.name)
	}
	assert.Empty(t, releaser("", &all[0], all), "the oldest takes a workload no one holds")
}
