package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

// TestStatefulSets releases StatefulSets in batches on the bed's real StatefulSet
// controller (seed 004): pods per revision and the partition at every step, a failing
// canary aborted with and without abortScaleDown, a revert, disable and delete mid-release,
// and the release-batch labels of a StatefulSet's and a Deployment's pods.
func TestStatefulSets(t *testing.T) {
	b := startRolloutBed(t, trafficsim.Config{Entries: []trafficsim.Entry{
		{Kind: trafficsim.KindHTTPRoute, Name: "db-ok", RPS: 50},
		{Kind: trafficsim.KindHTTPRoute, Name: "db-bad", RPS: 50},
		{Kind: trafficsim.KindHTTPRoute, Name: "db-down", RPS: 50},
		{Kind: trafficsim.KindHTTPRoute, Name: "web-batches", RPS: 50},
	}})
	batches := func(analysis bool) []v1alpha1.RolloutStep {
		var a *v1alpha1.RolloutAnalysis
		if analysis {
			a = fixtures.Analysis("error-rate")
		}
		return []v1alpha1.RolloutStep{
			{Replicas: fixtures.Replicas("1"), Traffic: ptr.To("20%"), Analysis: a},
			{Replicas: fixtures.Replicas("40%"), Traffic: ptr.To("40%"), Analysis: a, Pause: fixtures.Pause(0)},
			{Replicas: fixtures.Replicas("100%"), Traffic: ptr.To("100%"), Analysis: a},
		}
	}

	t.Run("batches 1, 40%, 100% with analysis at each step", func(t *testing.T) {
		const app = "db-ok"
		orig := b.statefulSet(t, app)
		b.httpRoute(t, app)
		b.rolloutOf(t, "StatefulSet", app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: batches(true), TrafficRoutings: fixtures.GatewayRouting(app),
		}})
		blue := b.get(t, app).Status.StableRevision
		require.NotEmpty(t, blue)
		assert.Equal(t, int32(2147483647), b.partition(t, app), "adopted: held above every ordinal")

		b.setStatefulSetTemplate(t, app, "echoserver:green", "0")
		ro := b.waitStep(t, app, 1, v1alpha1.StepMetricsAnalysis, time.Minute)
		green := ro.Status.CanaryRevision
		require.NotEqual(t, blue, green)
		assert.Equal(t, int32(4), b.partition(t, app), "step 1: one pod, the highest ordinal")
		b.waitRevisions(t, app, map[int]string{0: blue, 1: blue, 2: blue, 3: blue, 4: green})
		assert.Equal(t, map[string]string{"app": app, "controller-revision-hash": blue}, b.selector(t, app), "the stable Service is pinned by controller-revision-hash")
		assert.Equal(t, green, b.selector(t, app+"-canary")["controller-revision-hash"])

		b.waitStep(t, app, 2, v1alpha1.StepPaused, 2*time.Minute)
		assert.Equal(t, int32(3), b.partition(t, app), "step 2: 40% of 5 rounds up to 2")
		b.waitRevisions(t, app, map[int]string{0: blue, 1: blue, 2: blue, 3: green, 4: green})
		assert.Equal(t, map[string]string{"db-ok-3": "2", "db-ok-4": "1"}, b.batchLabels(t, app, green), "each pod carries the step it joined in")

		b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
		b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseCompleted)
		b.waitFor(t, app, time.Minute, "settled", func(ro *v1alpha1.Rollout) bool {
			return ro.Status.StableRevision == green && ro.Status.CanaryRevision == ""
		})
		b.waitRevisions(t, app, map[int]string{0: green, 1: green, 2: green, 3: green, 4: green})
		var s appsv1.StatefulSet
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(orig), &s))
		assert.Equal(t, int32(2147483647), b.partition(t, app), "held again for the next release")
		assert.Empty(t, b.batchLabels(t, app, ""), "no pod carries release labels after the release")
		assert.Equal(t, map[string]string{"app": app}, b.selector(t, app), "the Service's own selector is back")

		// Letting go gives the update strategy back exactly.
		ro = b.get(t, app)
		ro.Spec.Disabled = true
		require.NoError(t, b.Client.Update(context.Background(), ro))
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseDisabled)
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(orig), &s))
		assert.Equal(t, orig.Spec.UpdateStrategy, s.Spec.UpdateStrategy, "the original updateStrategy is back")
		assert.NotContains(t, s.Annotations, "promgate.io/original-deployment")
	})

	for _, scaleDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("a failing canary aborts at step 1 (abortScaleDown %v)", scaleDown), func(t *testing.T) {
			app := "db-bad"
			if scaleDown {
				app = "db-down"
			}
			b.statefulSet(t, app)
			b.httpRoute(t, app)
			b.rolloutOf(t, "StatefulSet", app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
				Steps: batches(true), TrafficRoutings: fixtures.GatewayRouting(app), AbortScaleDown: scaleDown,
			}})
			blue := b.get(t, app).Status.StableRevision
			b.setStatefulSetTemplate(t, app, "echoserver:green", "0.5")
			ro := b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseAborted)
			green := ro.Status.CanaryRevision
			assert.Equal(t, int32(1), ro.Status.CurrentStepIndex)
			assert.Equal(t, blue, b.selector(t, app)["controller-revision-hash"], "the stable Service stays on the old revision")
			assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app), "no traffic to the canary")
			if !scaleDown {
				b.waitRevisions(t, app, map[int]string{0: blue, 1: blue, 2: blue, 3: blue, 4: green})
				return
			}
			b.waitRevisions(t, app, map[int]string{0: blue, 1: blue, 2: blue, 3: blue, 4: blue})
			assert.Equal(t, int32(2147483647), b.partition(t, app), "abortScaleDown raises the partition again")
		})
	}

	t.Run("revert, disable and delete mid-release", func(t *testing.T) {
		for _, how := range []string{"revert", "disable", "delete"} {
			app := "db-" + how
			orig := b.statefulSet(t, app)
			b.create(t, fixtures.HTTPRoute(b.ns, app))
			b.rolloutOf(t, "StatefulSet", app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
				Steps: batches(false), TrafficRoutings: fixtures.GatewayRouting(app),
			}})
			blue := b.get(t, app).Status.StableRevision
			origSelector, origRoute := b.selector(t, app), b.routeWeights(t, app)
			b.setStatefulSetTemplate(t, app, "echoserver:green", "0")
			ro := b.waitStep(t, app, 2, v1alpha1.StepPaused, 2*time.Minute)
			green := ro.Status.CanaryRevision
			b.waitRevisions(t, app, map[int]string{0: blue, 1: blue, 2: blue, 3: green, 4: green})
			switch how {
			case "revert":
				b.setStatefulSetTemplate(t, app, fixtures.BlueImage, "0")
				b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCancelled)
				b.waitFor(t, app, 2*time.Minute, "settled", func(ro *v1alpha1.Rollout) bool { return ro.Status.CanaryRevision == "" })
				b.waitRevisions(t, app, map[int]string{0: blue, 1: blue, 2: blue, 3: blue, 4: blue})
			case "disable":
				ro.Spec.Disabled = true
				require.NoError(t, b.Client.Update(context.Background(), ro))
				b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseDisabled)
			case "delete":
				require.NoError(t, b.Client.Delete(context.Background(), ro))
				require.Eventually(t, func() bool { return b.absent(t, &v1alpha1.Rollout{}, app) }, time.Minute, 100*time.Millisecond)
			}
			assert.Equal(t, origSelector, b.selector(t, app), how)
			assert.Equal(t, origRoute, b.routeWeights(t, app), how)
			require.Eventually(t, func() bool { return b.absent(t, &corev1.Service{}, app+"-canary") }, 30*time.Second, 100*time.Millisecond, how)
			if how != "revert" {
				var s appsv1.StatefulSet
				require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(orig), &s))
				assert.Equal(t, orig.Spec.UpdateStrategy, s.Spec.UpdateStrategy, "%s: the original updateStrategy is back", how)
				// Let go, the StatefulSet controller finishes the new template on its own.
				b.waitRevisions(t, app, map[int]string{0: green, 1: green, 2: green, 3: green, 4: green})
			}
			assert.Empty(t, b.batchLabels(t, app, ""), "%s: no pod carries release labels", how)
		}
	})

	t.Run("a Deployment's pods carry their batch", func(t *testing.T) {
		const app = "web-batches"
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: batches(false), TrafficRoutings: fixtures.GatewayRouting(app),
		}})
		b.setTemplate(t, app, "echoserver:green", "0")
		green := b.waitStep(t, app, 2, v1alpha1.StepPaused, 2*time.Minute).Status.CanaryRevision
		b.waitPods(t, app, map[string]int{b.get(t, app).Status.StableRevision: 5, green: 2})
		got := map[string]int{}
		for _, batch := range b.batchLabels(t, app, green) {
			got[batch]++
		}
		assert.Equal(t, map[string]int{"1": 1, "2": 1}, got, "one pod joined at step 1, one at step 2")
		b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
		b.waitFor(t, app, 2*time.Minute, "settled", func(ro *v1alpha1.Rollout) bool {
			return ro.Status.StableRevision == green && ro.Status.CanaryRevision == ""
		})
		assert.Empty(t, b.batchLabels(t, app, ""), "no pod carries release labels after the release")
	})

	t.Run("bad input is a condition naming the field, and nothing changes", func(t *testing.T) {
		od := b.statefulSet(t, "db-ondelete")
		od = od.DeepCopy()
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(od), od))
		od.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		require.NoError(t, b.Client.Update(context.Background(), od))
		b.statefulSet(t, "db-taken")
		plain := []v1alpha1.RolloutStep{{Replicas: fixtures.Replicas("1")}, {Replicas: fixtures.Replicas("100%")}}
		b.rolloutOf(t, "StatefulSet", "db-taken", v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: plain}})
		for name, tc := range map[string]struct {
			target         string
			strategy       v1alpha1.RolloutStrategy
			field, message string
		}{
			"ondelete":   {"db-ondelete", v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: plain}}, "spec.workloadRef.name", "OnDelete"},
			"blue-green": {"db-taken", v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{Steps: plain}}, "spec.strategy.blueGreen", "two full sets of pods"},
			"second":     {"db-taken", v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: plain}}, "spec.workloadRef.name", `already released by Rollout "db-taken"`},
		} {
			ro := fixtures.Rollout(b.ns, "bad-sts-"+name, tc.strategy)
			ro.Spec.WorkloadRef.Kind, ro.Spec.WorkloadRef.Name = "StatefulSet", tc.target
			b.create(t, ro)
			var cond *metav1.Condition
			require.Eventually(t, func() bool {
				cond = apimeta.FindStatusCondition(b.get(t, ro.Name).Status.Conditions, "Valid")
				return cond != nil
			}, 30*time.Second, 100*time.Millisecond, name)
			assert.Equal(t, metav1.ConditionFalse, cond.Status, name)
			assert.Contains(t, cond.Message, tc.field+":", name)
			assert.Contains(t, cond.Message, tc.message, name)
		}
		var s appsv1.StatefulSet
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: "db-ondelete"}, &s))
		assert.NotContains(t, s.Annotations, "promgate.io/rollout", "an invalid Rollout changes nothing")
		assert.Equal(t, appsv1.OnDeleteStatefulSetStrategyType, s.Spec.UpdateStrategy.Type)
	})

	if t.Failed() {
		fmt.Println(b.kubectl(t, "get", "rollouts,statefulsets,controllerrevisions,pods,svc", "-o", "wide", "--show-labels"))
		fmt.Println(b.kubectl(t, "get", "events", "--sort-by=.lastTimestamp"))
	}
}

// statefulSet creates StatefulSet name of 5 replicas with its Service and waits for its
// pods.
func (b *rolloutBed) statefulSet(t *testing.T, name string) *appsv1.StatefulSet {
	t.Helper()
	s := fixtures.StatefulSet(b.ns, name, 5)
	b.create(t, s, fixtures.Service(b.ns, name))
	require.Eventually(t, func() bool {
		var got appsv1.StatefulSet
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(s), &got))
		return got.Status.ReadyReplicas == 5 && got.Status.AvailableReplicas == 5
	}, 2*time.Minute, 100*time.Millisecond, "StatefulSet %s ready", name)
	return s
}

// rolloutOf creates a Rollout of the workload kind/name and waits for it to adopt it.
func (b *rolloutBed) rolloutOf(t *testing.T, kind, name string, strategy v1alpha1.RolloutStrategy) {
	t.Helper()
	ro := fixtures.Rollout(b.ns, name, strategy)
	ro.Spec.WorkloadRef.Kind = kind
	b.create(t, ro)
	b.waitPhase(t, name, time.Minute, v1alpha1.RolloutPhaseHealthy)
}

func (b *rolloutBed) setStatefulSetTemplate(t *testing.T, name, image, errorRate string) {
	t.Helper()
	require.NoError(t, fixtures.SetStatefulSetTemplate(context.Background(), b.Client, b.ns, name, image, errorRate))
}

func (b *rolloutBed) partition(t *testing.T, name string) int32 {
	t.Helper()
	var s appsv1.StatefulSet
	require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: name}, &s))
	return ptr.Deref(s.Spec.UpdateStrategy.RollingUpdate.Partition, 0)
}

// waitRevisions waits until the StatefulSet's pods are exactly want: each ordinal Ready on
// its revision.
func (b *rolloutBed) waitRevisions(t *testing.T, name string, want map[int]string) {
	t.Helper()
	var got map[int]string
	require.Eventually(t, func() bool {
		var list corev1.PodList
		require.NoError(t, b.Client.List(context.Background(), &list, client.InNamespace(b.ns), client.MatchingLabels{"app": name}))
		got = map[int]string{}
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && testbed.PodReady(&p) {
				i, err := strconv.Atoi(p.Labels[appsv1.PodIndexLabel])
				require.NoError(t, err)
				got[i] = p.Labels[appsv1.ControllerRevisionHashLabelKey]
			}
		}
		return assert.ObjectsAreEqual(want, got)
	}, 2*time.Minute, 100*time.Millisecond, "pods of %s by ordinal: want %v", name, want)
}

// batchLabels maps the pods of app on revision rev (any, when empty) that carry a
// release batch to it.
func (b *rolloutBed) batchLabels(t *testing.T, app, rev string) map[string]string {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, b.Client.List(context.Background(), &list, client.InNamespace(b.ns), client.MatchingLabels{"app": app}))
	out := map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if r := p.Labels["controller-revision-hash"] + p.Labels["pod-template-hash"]; rev != "" && r != rev {
			continue
		}
		if batch, ok := p.Labels["promgate.io/release-batch"]; ok {
			out[p.Name] = batch
		}
	}
	return out
}
