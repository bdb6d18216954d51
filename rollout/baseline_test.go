package rollout

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

// baselineSteps are a canary step of one pod at 20% beside two baseline pods, judged and
// then waiting for a human, and all the pods at 100%.
func baselineSteps() []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Baseline: &v1alpha1.RolloutBaseline{Replicas: 2},
			Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "judge"}}}, Pause: &v1alpha1.RolloutPause{}},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
	}
}

// readySlice is Service svc's EndpointSlice holding pods, all ready.
func readySlice(svc string, pods ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: fakeNS, Name: svc + "-slice", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, p := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.0.0.%d", i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p},
		})
	}
	return es
}

// gatewayRef is the HTTPRoute's backendRef to Service svc, as the API server defaults it.
func gatewayRef(svc string, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
			Name: gatewayv1.ObjectName(svc), Port: ptr.To(gatewayv1.PortNumber(80)),
		},
		Weight: ptr.To(weight),
	}}
}

// baselineCluster is a release of green at st with baselineSteps on a Gateway API route:
// Deployment web of 5 (blue 5, green 1, all ready), Service web, HTTPRoute web, and the
// pods and EndpointSlices of the stable, canary and baseline Services.
func baselineCluster(t *testing.T, st v1alpha1.RolloutStatus, edit func(*v1alpha1.Rollout), extra ...client.Object) *fakeCluster {
	t.Helper()
	d := fakeDeployment(5, green)
	hold(d, 1, false)
	blueRS, greenRS := fakeReplicaSet(d, blue, 5, 1), fakeReplicaSet(d, green, 1, 2)
	bh := baselineHash(blue)
	objs := []client.Object{d, blueRS, greenRS,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}},
		&gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web"},
			Spec: gatewayv1.HTTPRouteSpec{Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{gatewayRef("web", 1)}}}}},
		&v1alpha1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "judge"},
			Spec: v1alpha1.AnalysisTemplateSpec{
				Args: []v1alpha1.Argument{{Name: ArgBaselineHash}, {Name: ArgCanaryHash}},
				Metrics: []v1alpha1.Metric{{Name: "latency",
					Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{URL: "http://metrics/latency", JSONPath: "{$.value}"}}}},
			}},
		fakePod(blueRS, "web-blue-1", nil), fakePod(greenRS, "web-green-1", nil),
		readySlice("web", "web-blue-1"), readySlice("web-canary", "web-green-1"),
		readySlice("web-baseline", "web-baseline-1", "web-baseline-2"),
	}
	for _, name := range []string{"web-baseline-1", "web-baseline-2"} {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: name,
			Labels: map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: bh}}})
	}
	ro := fakeRollout(baselineSteps(), st)
	ro.Spec.Strategy.Canary.TrafficRoutings = []v1alpha1.TrafficRouting{{Service: "web", Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: "web"}}}
	if edit != nil {
		edit(ro)
	}
	return newFakeCluster(t, append(append(objs, extra...), stored(t, ro))...)
}

// runningBaseline is what a step's baseline leaves in the cluster while it runs: its
// ReplicaSet (ready), its Service and the route sending it 20%.
func (k *fakeCluster) runningBaseline() {
	k.t.Helper()
	ctx := context.Background()
	ro := k.rollout()
	var blueRS appsv1.ReplicaSet
	require.NoError(k.t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: "web-" + blue}, &blueRS))
	var d appsv1.Deployment
	require.NoError(k.t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: "web"}, &d))
	rs, err := k.r.newState(ro).baselineReplicaSet(&deployment{d: &d}, &blueRS, 2)
	require.NoError(k.t, err)
	require.NoError(k.t, k.api.Create(ctx, rs))
	k.readyBaseline(rs)
	for _, rt := range traffic.ForRollout(k.api, traffic.SliceEndpoints{Reader: k.api}, ro) {
		require.NoError(k.t, rt.Route(ctx, 20, nil))
	}
	require.Equal(k.t, map[string]int32{"web": 60, "web-canary": 20, "web-baseline": 20}, k.weights())
	k.writes = nil
}

// readyBaseline has the ReplicaSet controller report rs's pods ready.
func (k *fakeCluster) readyBaseline(rs *appsv1.ReplicaSet) {
	k.t.Helper()
	rs.Status = appsv1.ReplicaSetStatus{Replicas: *rs.Spec.Replicas, ReadyReplicas: *rs.Spec.Replicas, ObservedGeneration: rs.Generation}
	require.NoError(k.t, k.api.Status().Update(context.Background(), rs))
	var got appsv1.ReplicaSet
	require.NoError(k.t, k.api.Get(context.Background(), client.ObjectKeyFromObject(rs), &got))
	require.Equal(k.t, rs.Status, got.Status, "generation %d", got.Generation)
}

// weights are the HTTPRoute's backend weights by Service.
func (k *fakeCluster) weights() map[string]int32 {
	k.t.Helper()
	var route gatewayv1.HTTPRoute
	require.NoError(k.t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web"}, &route))
	out := map[string]int32{}
	for _, rule := range route.Spec.Rules {
		for _, ref := range rule.BackendRefs {
			out[string(ref.Name)] += ptr.Deref(ref.Weight, 1)
		}
	}
	return out
}

// gone says the object of that name does not exist.
func (k *fakeCluster) gone(obj client.Object, name string) bool {
	k.t.Helper()
	err := k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return true
	}
	require.NoError(k.t, err)
	return false
}

func (k *fakeCluster) setStatus(f func(*v1alpha1.RolloutStatus)) {
	k.t.Helper()
	ro := k.rollout()
	f(&ro.Status)
	require.NoError(k.t, k.api.Status().Update(context.Background(), ro))
}

// A baseline step records the baseline, starts its pods, waits for them, routes them the
// canary's share, hands their hash to the step's run, keeps them through the step's pause
// and drops them when the step ends, the route first.
func TestABaselineStepRunsAndEndsWithItsStep(t *testing.T) {
	ctx := context.Background()
	bh := baselineHash(blue)
	k := baselineCluster(t, at(1, v1alpha1.StepUpgrade), nil)

	k.reconcile()
	st := k.rollout().Status
	assert.Equal(t, bh, st.BaselineRevision, "named in status first")
	assert.Contains(t, st.Message, "recording the baseline before its pods start")
	assert.NotContains(t, k.writes, "create ReplicaSet web-baseline", "before its name is in status, no baseline exists")

	k.writes = nil
	k.reconcile()
	assert.Equal(t, []string{"create ReplicaSet web-baseline"}, k.writes)
	var rs appsv1.ReplicaSet
	require.NoError(t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: "web-baseline"}, &rs))
	assert.True(t, metav1.IsControlledBy(&rs, k.rollout()), "owned by the Rollout, so the Deployment controller never adopts it")
	assert.Equal(t, int32(2), *rs.Spec.Replicas)
	assert.Equal(t, "shop:"+blue, rs.Spec.Template.Spec.Containers[0].Image, "the stable template")
	assert.Equal(t, map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: bh}, rs.Spec.Template.Labels,
		"its own pod-template-hash keeps it out of the stable Service, pinned to blue")
	assert.Equal(t, map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: bh}, rs.Spec.Selector.MatchLabels)
	assert.Contains(t, k.rollout().Status.Message, "1/1 new pods ready, 0/2 baseline pods ready")
	assert.Equal(t, v1alpha1.StepUpgrade, k.rollout().Status.CurrentStepState, "waits for the baseline pods")

	k.readyBaseline(&rs)
	k.writes = nil
	k.reconcile()
	st = k.rollout().Status
	assert.Equal(t, v1alpha1.StepMetricsAnalysis, st.CurrentStepState, "message %q", st.Message)
	assert.Equal(t, map[string]int32{"web": 60, "web-canary": 20, "web-baseline": 20}, k.weights(), "the baseline gets the canary's share")
	var svc corev1.Service
	require.NoError(t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: "web-baseline"}, &svc))
	assert.Equal(t, map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: bh}, svc.Spec.Selector)

	k.reconcile()
	st = k.rollout().Status
	var run v1alpha1.AnalysisRun
	require.NoError(t, k.api.Get(ctx, client.ObjectKey{Namespace: fakeNS, Name: st.AnalysisRuns.Step}, &run))
	assert.Equal(t, []v1alpha1.Argument{{Name: ArgBaselineHash, Value: ptr.To(bh)}, {Name: ArgCanaryHash, Value: ptr.To(green)}}, run.Spec.Args)
	run.Status.Phase = v1alpha1.AnalysisPhaseSuccessful
	require.NoError(t, k.api.Status().Update(ctx, &run))

	k.reconcile()
	st = k.rollout().Status
	assert.Equal(t, v1alpha1.StepPaused, st.CurrentStepState)
	assert.Equal(t, bh, st.BaselineRevision, "the step's pause is still the step")
	assert.False(t, k.gone(&appsv1.ReplicaSet{}, "web-baseline"))

	k.setStatus(func(st *v1alpha1.RolloutStatus) { st.CurrentStepState = v1alpha1.StepReady })
	k.writes = nil
	k.reconcile()
	require.GreaterOrEqual(t, len(k.writes), 3)
	assert.Equal(t, []string{"update HTTPRoute web", "delete Service web-baseline", "delete ReplicaSet web-baseline"}, k.writes[:3],
		"the route gives the baseline's share back before its Service and pods go")
	assert.Equal(t, map[string]int32{"web": 80, "web-canary": 20}, k.weights(), "the canary keeps its share until step 2 moves it")
	assert.True(t, k.gone(&corev1.Service{}, "web-baseline"))
	assert.True(t, k.gone(&appsv1.ReplicaSet{}, "web-baseline"))
	st = k.rollout().Status
	assert.Empty(t, st.BaselineRevision)
	assert.Equal(t, int32(2), st.CurrentStepIndex)
}

// Every way out of a baseline step takes the baseline away: its traffic first, then its
// Service and its ReplicaSet.
func TestEveryWayOutOfTheStepDropsTheBaseline(t *testing.T) {
	bh := baselineHash(blue)
	running := with(at(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) { st.BaselineRevision = bh })
	for name, tc := range map[string]struct {
		status v1alpha1.RolloutStatus
		edit   func(*v1alpha1.Rollout)
		// template is the Deployment's revision; green when empty.
		template string
		run      v1alpha1.AnalysisPhase
		delete   bool
		// baseline is status.baselineRevision after the pass ("" for a deleted Rollout).
		baseline string
		phase    v1alpha1.RolloutPhase
	}{
		"an abort": {status: with(running, func(st *v1alpha1.RolloutStatus) { st.Abort = true }), phase: v1alpha1.RolloutPhaseAborted},
		"a failed analysis": {status: with(running, func(st *v1alpha1.RolloutStatus) {
			st.CurrentStepState, st.AnalysisRuns.Step = v1alpha1.StepMetricsAnalysis, "web-run"
		}), run: v1alpha1.AnalysisPhaseFailed, phase: v1alpha1.RolloutPhaseAborted},
		"a jump":       {status: with(running, func(st *v1alpha1.RolloutStatus) { st.NextStepIndex = 2 }), phase: v1alpha1.RolloutPhaseProgressing},
		"promote-full": {status: with(running, func(st *v1alpha1.RolloutStatus) { st.PromoteFull = true }), phase: v1alpha1.RolloutPhaseCompleted},
		"a cancel":     {status: running, template: blue, phase: v1alpha1.RolloutPhaseCancelled},
		"disabling":    {status: running, edit: func(ro *v1alpha1.Rollout) { ro.Spec.Disabled = true }, phase: v1alpha1.RolloutPhaseDisabled},
		"deleting":     {status: running, delete: true},
		"a spec edit":  {status: with(running, func(st *v1alpha1.RolloutStatus) { st.CurrentStepState = v1alpha1.StepUpgrade }), edit: func(ro *v1alpha1.Rollout) { ro.Spec.Strategy.Canary.Steps[0].Baseline = nil }, phase: v1alpha1.RolloutPhaseProgressing},
		"a new template": {status: running, template: "purple", phase: v1alpha1.RolloutPhaseProgressing,
			baseline: bh},
	} {
		t.Run(name, func(t *testing.T) {
			var extra []client.Object
			if tc.run != "" {
				run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web-run"}}
				run.Status.Phase = tc.run
				extra = append(extra, run)
			}
			k := baselineCluster(t, tc.status, tc.edit, extra...)
			k.runningBaseline()
			if tc.template != "" {
				d := k.deployment()
				d.Spec.Template = template(tc.template)
				require.NoError(t, k.api.Update(context.Background(), d))
			}
			if tc.delete {
				require.NoError(t, k.api.Delete(context.Background(), k.rollout()))
			}
			k.reconcile()

			assert.Contains(t, k.writes, "delete ReplicaSet web-baseline")
			assert.True(t, k.gone(&appsv1.ReplicaSet{}, "web-baseline"), "the baseline's pods go")
			assert.True(t, k.gone(&corev1.Service{}, "web-baseline"), "and its Service")
			assert.NotContains(t, k.weights(), "web-baseline", "no route sends to it")
			if tc.delete {
				assert.True(t, k.gone(&v1alpha1.Rollout{}, "web"), "the finalizer let the Rollout go")
				return
			}
			st := k.rollout().Status
			assert.Equal(t, tc.phase, st.Phase, "message %q", st.Message)
			assert.Equal(t, tc.baseline, st.BaselineRevision)
		})
	}
}

// A pass that cannot delete the baseline writes no status: the baseline stays named, and
// the next pass drops it.
func TestAPassThatCannotDropTheBaselineWritesNoStatus(t *testing.T) {
	bh := baselineHash(blue)
	k := baselineCluster(t, with(at(1, v1alpha1.StepReady), func(st *v1alpha1.RolloutStatus) { st.BaselineRevision = bh }), nil)
	k.runningBaseline()
	before := k.rollout().Status
	k.fail = func(verb string, obj client.Object) error {
		if _, ok := obj.(*appsv1.ReplicaSet); ok && verb == "delete" {
			return apierrors.NewServiceUnavailable("etcd is away")
		}
		return nil
	}
	_, err := k.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: fakeNS, Name: "web"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "deleting the baseline ReplicaSet web-baseline")
	assert.Equal(t, before, k.rollout().Status, "nothing of the pass is recorded")

	k.fail = nil
	k.reconcile()
	st := k.rollout().Status
	assert.Empty(t, st.BaselineRevision)
	assert.Equal(t, int32(2), st.CurrentStepIndex)
	assert.True(t, k.gone(&appsv1.ReplicaSet{}, "web-baseline"))
}

// The baseline ReplicaSet is decided from the API server's copy: a cache that has not
// seen it yet never makes a second one, and a ReplicaSet of its name that is not the
// Rollout's is refused, untouched, with a field error.
func TestTheBaselineIsDecidedFromTheAPIServer(t *testing.T) {
	bh := baselineHash(blue)
	upgrading := with(at(1, v1alpha1.StepUpgrade), func(st *v1alpha1.RolloutStatus) { st.BaselineRevision = bh })

	t.Run("a cache behind", func(t *testing.T) {
		k := baselineCluster(t, upgrading, nil)
		k.runningBaseline()
		k.cached = func(key client.ObjectKey, obj client.Object) (bool, error) {
			if _, ok := obj.(*appsv1.ReplicaSet); ok && key.Name == "web-baseline" {
				return true, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "replicasets"}, key.Name)
			}
			return false, nil
		}
		k.reconcile()
		assert.NotContains(t, k.writes, "create ReplicaSet web-baseline")
		assert.Equal(t, v1alpha1.StepMetricsAnalysis, k.rollout().Status.CurrentStepState, "its ready pods count")
	})

	t.Run("the user's ReplicaSet", func(t *testing.T) {
		users := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web-baseline"},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](7)}}
		k := baselineCluster(t, upgrading, nil, users)
		k.reconcile()
		st := k.rollout().Status
		c := apimeta.FindStatusCondition(st.Conditions, ConditionValid)
		require.NotNil(t, c)
		assert.Equal(t, metav1.ConditionFalse, c.Status)
		assert.Contains(t, c.Message, `spec.strategy.canary.steps[0].baseline: Forbidden: ReplicaSet "web-baseline" exists and was not created by this Rollout`)
		var rs appsv1.ReplicaSet
		require.NoError(t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web-baseline"}, &rs))
		assert.Equal(t, int32(7), *rs.Spec.Replicas)
	})

	t.Run("a scaled baseline is put back", func(t *testing.T) {
		k := baselineCluster(t, upgrading, nil)
		k.runningBaseline()
		var rs appsv1.ReplicaSet
		require.NoError(t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web-baseline"}, &rs))
		rs.Spec.Replicas = ptr.To[int32](4)
		require.NoError(t, k.api.Update(context.Background(), &rs))
		k.reconcile()
		assert.Contains(t, k.writes, "patch ReplicaSet web-baseline")
		require.NoError(t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web-baseline"}, &rs))
		assert.Equal(t, int32(2), *rs.Spec.Replicas)
	})
}

// What cannot carry a baseline is refused with a field error naming the field, and
// nothing in the cluster moves.
func TestBaselineSpecErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*v1alpha1.Rollout)
		want string
	}{
		"no pods": {func(ro *v1alpha1.Rollout) { ro.Spec.Strategy.Canary.Steps[0].Baseline.Replicas = 0 },
			"spec.strategy.canary.steps[0].baseline.replicas: 0 baseline pods: a baseline has at least 1"},
		"more pods than the Deployment": {func(ro *v1alpha1.Rollout) { ro.Spec.Strategy.Canary.Steps[0].Baseline.Replicas = 6 },
			"spec.strategy.canary.steps[0].baseline.replicas: 6 baseline pods are more than the 5 replicas of Deployment web"},
		"a StatefulSet": {func(ro *v1alpha1.Rollout) { ro.Spec.WorkloadRef.Kind = "StatefulSet" },
			"spec.strategy.canary.steps[0].baseline: a baseline runs pods of the stable template beside a Deployment's"},
		"an ingress routing": {func(ro *v1alpha1.Rollout) {
			ro.Spec.Strategy.Canary.TrafficRoutings = append(ro.Spec.Strategy.Canary.TrafficRoutings,
				v1alpha1.TrafficRouting{Service: "web", Ingress: &v1alpha1.IngressTrafficRouting{Name: "web"}})
		}, "spec.strategy.canary.steps[0].baseline: a baseline is routed by Gateway API HTTPRoutes only, and spec.strategy.canary.trafficRoutings[1] is not a gateway routing"},
		"no routing": {func(ro *v1alpha1.Rollout) {
			ro.Spec.Strategy.Canary.TrafficRoutings = nil
			ro.Spec.Strategy.Canary.Steps[0].Traffic = nil
			ro.Spec.Strategy.Canary.Steps[1].Traffic = nil
		}, "spec.strategy.canary.steps[0].baseline: a baseline gets the canary's share of traffic, which needs a gateway entry in spec.strategy.canary.trafficRoutings"},
		"more than half the traffic": {func(ro *v1alpha1.Rollout) { ro.Spec.Strategy.Canary.Steps[0].Traffic = ptr.To("60%") },
			`spec.strategy.canary.steps[0].baseline: the baseline takes the canary's 60% as well`},
		"a Service name too long for its baseline copy": {func(ro *v1alpha1.Rollout) {
			ro.Spec.Strategy.Canary.TrafficRoutings[0].Service = "a-service-name-of-fifty-five-characters-which-is-legal1"
		}, `spec.strategy.canary.trafficRoutings[0].service: the baseline's generated Service "a-service-name-of-fifty-five-characters-which-is-legal1-baseline" is not a valid name`},
	} {
		t.Run(name, func(t *testing.T) {
			k := baselineCluster(t, at(1, v1alpha1.StepUpgrade), tc.edit)
			k.reconcile()
			st := k.rollout().Status
			c := apimeta.FindStatusCondition(st.Conditions, ConditionValid)
			require.NotNil(t, c)
			assert.Equal(t, metav1.ConditionFalse, c.Status)
			assert.Contains(t, c.Message, tc.want)
			assert.Empty(t, k.writes, "nothing written")
			assert.Empty(t, st.BaselineRevision)
		})
	}
}

// A run that asks for the baseline's hash at a step without one is refused before it
// exists; the built-in arg is simply not given there.
func TestTheBaselineHashArg(t *testing.T) {
	k := baselineCluster(t, at(1, v1alpha1.StepUpgrade), nil)
	s := k.r.newState(k.rollout())
	require.NoError(t, s.load(context.Background()))
	a := &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "judge"}},
		Args: []v1alpha1.AnalysisRunArgument{{Name: "base", ValueFrom: &v1alpha1.AnalysisRunArgumentValueFrom{PodTemplateHashValue: "Baseline"}}}}
	_, err := s.buildRun(context.Background(), a, field.NewPath("spec", "strategy", "canary", "steps").Index(0).Child("analysis"))
	var fe *field.Error
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "spec.strategy.canary.steps[0].analysis.args[0].valueFrom.podTemplateHashValue", fe.Field)

	s.ro.Status.BaselineRevision = "b4s3"
	spec, err := s.buildRun(context.Background(), a, field.NewPath("analysis"))
	require.NoError(t, err)
	assert.Contains(t, spec.Args, v1alpha1.Argument{Name: "base", Value: ptr.To("b4s3")})
	assert.Contains(t, spec.Args, v1alpha1.Argument{Name: ArgBaselineHash, Value: ptr.To("b4s3")})
}
