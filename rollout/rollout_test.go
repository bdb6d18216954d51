package rollout

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestValidateSpecNamesTheField(t *testing.T) {
	base := func(steps ...v1alpha1.RolloutStep) *v1alpha1.Rollout {
		return &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{
			WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Strategy:    v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: steps}},
		}}
	}
	for name, tc := range map[string]struct {
		ro    *v1alpha1.Rollout
		field string
	}{
		"daemonset": {func() *v1alpha1.Rollout {
			ro := base(v1alpha1.RolloutStep{})
			ro.Spec.WorkloadRef.Kind = "DaemonSet"
			return ro
		}(), "spec.workloadRef"},
		"blue-green statefulset": {func() *v1alpha1.Rollout {
			ro := base(v1alpha1.RolloutStep{})
			ro.Spec.WorkloadRef.Kind = "StatefulSet"
			ro.Spec.Strategy = v1alpha1.RolloutStrategy{BlueGreen: ro.Spec.Strategy.Canary}
			return ro
		}(), "spec.strategy.blueGreen"},
		"no steps":        {base(), "spec.strategy.canary.steps"},
		"negative count":  {base(v1alpha1.RolloutStep{}, v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromInt32(-1))}), "spec.strategy.canary.steps[1].replicas"},
		"percent over":    {base(v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("101%"))}), "spec.strategy.canary.steps[0].replicas"},
		"not a percent":   {base(v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("half"))}), "spec.strategy.canary.steps[0].replicas"},
		"traffic no rt":   {base(v1alpha1.RolloutStep{Traffic: ptr.To("10%")}), "spec.strategy.canary.steps[0].traffic"},
		"traffic invalid": {base(v1alpha1.RolloutStep{Traffic: ptr.To("110%")}), "spec.strategy.canary.steps[0].traffic"},
	} {
		err := validateSpec(tc.ro)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), tc.field+":", name)
	}
	assert.NoError(t, validateSpec(base(v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("50%"))})))

	err := validateSpec(base(
		v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromInt32(-1)), Traffic: ptr.To("110%")},
		v1alpha1.RolloutStep{Replicas: ptr.To(intstr.FromString("half"))},
	))
	for _, f := range []string{"steps[0].replicas", "steps[0].traffic", "steps[1].replicas"} {
		assert.ErrorContains(t, err, "spec.strategy.canary."+f+":", "every problem is reported at once")
	}
	fe, ok := errors.AsType[*field.Error](err)
	require.True(t, ok, "the controller finds a field error in it")
	assert.Equal(t, "spec.strategy.canary.steps[0].replicas", fe.Field)
}

func TestTrafficAndReplicasCarryOver(t *testing.T) {
	steps := []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1))},
		{Traffic: ptr.To("20%")},
		{Replicas: ptr.To(intstr.FromString("50%"))},
		{Traffic: ptr.To("100%")},
	}
	for step, want := range map[int32]int32{1: 0, 2: 20, 3: 20, 4: 100} {
		got, err := TrafficAt(steps, step)
		require.NoError(t, err)
		assert.Equal(t, want, got, "traffic at step %d", step)
	}
	canary := func(steps []v1alpha1.RolloutStep) *state {
		return &state{ro: &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: steps}}}}}
	}
	blueGreen := func(steps []v1alpha1.RolloutStep) *state {
		return &state{ro: &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{Strategy: v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{Steps: steps}}}}}
	}
	for _, tc := range []struct {
		s    *state
		step int32
		want int32
	}{
		{canary(steps), 1, 1},
		{canary(steps), 2, 1},
		{canary(steps), 3, 3}, // 50% of 5 rounds up
		{canary(steps), 4, 3},
		{canary([]v1alpha1.RolloutStep{{}}), 1, 1},
		{blueGreen([]v1alpha1.RolloutStep{{}}), 1, 5},
	} {
		got, err := desiredReplicas(tc.s.replicasAt(tc.step), 5)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "replicas at step %d", tc.step)
	}
}

func TestHoldAndReleaseRestoreTheDeploymentExactly(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{"team": "a"}},
		Spec: appsv1.DeploymentSpec{
			Replicas:        ptr.To[int32](5),
			MinReadySeconds: 3,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromString("25%")), MaxUnavailable: ptr.To(intstr.FromString("25%")),
			}},
		},
	}
	orig := d.DeepCopy()

	changed, err := adopt(d, "web")
	require.NoError(t, err)
	assert.True(t, changed)
	assert.True(t, d.Spec.Paused, "adopted Deployments wait for the Rollout")
	changed, err = adopt(d, "web")
	require.NoError(t, err)
	assert.False(t, changed, "adopting twice writes nothing")

	assert.True(t, hold(d, 2, false))
	assert.False(t, d.Spec.Paused)
	assert.Equal(t, intstr.FromInt32(2), *d.Spec.Strategy.RollingUpdate.MaxSurge)
	assert.Equal(t, intstr.FromInt32(0), *d.Spec.Strategy.RollingUpdate.MaxUnavailable)
	assert.Equal(t, int32(holdMinReadySeconds), d.Spec.MinReadySeconds)
	assert.False(t, hold(d, 2, false), "holding twice writes nothing")
	assert.True(t, hold(d, 0, false))
	assert.Equal(t, intstr.FromInt32(1), *d.Spec.Strategy.RollingUpdate.MaxSurge, "maxSurge and maxUnavailable may not both be 0")

	changed, err = release(d, true)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, orig.Spec.Strategy, d.Spec.Strategy)
	assert.Equal(t, orig.Spec.MinReadySeconds, d.Spec.MinReadySeconds)
	assert.False(t, d.Spec.Paused, "the Deployment controller finishes the release")
	assert.Contains(t, d.Annotations, originalAnnotation, "still managed")

	changed, err = release(d, false)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, orig, d, "letting go restores every field and annotation")
}

func TestReadRevisionsFindsTheTemplatesReplicaSet(t *testing.T) {
	tmpl := func(image string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
		}
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d1"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: tmpl("green"),
	}}
	rs := func(name, hash, image string, owned bool) *appsv1.ReplicaSet {
		t := tmpl(image)
		t.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		r := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: t.Labels},
			Spec:       appsv1.ReplicaSetSpec{Template: t},
		}
		if owned {
			r.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}
		}
		return r
	}
	scheme := runtime.NewScheme()
	require.NoError(t, appsv1.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).WithIndex(&appsv1.ReplicaSet{}, replicaSetOwnerIndex, controllingDeployment).WithObjects(
		rs("web-aaa", "aaa", "blue", true), rs("web-bbb", "bbb", "green", true), rs("other-ccc", "ccc", "green", false),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "api-ddd", Namespace: "ns", Labels: map[string]string{"app": "api"}}},
	).Build()
	for _, indexed := range []bool{true, false} {
		revs, err := readRevisions(context.Background(), c, d, indexed)
		require.NoError(t, err)
		assert.Equal(t, "bbb", hashOf(revs.current), "indexed %v", indexed)
		assert.Len(t, revs.byHash, 2, "only the Deployment's own ReplicaSets (indexed %v)", indexed)
	}
}
