package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

// The fake cluster's names: one Rollout "web" releasing Deployment "web" from revision
// blue to green.
const (
	fakeNS = "shop"
	blue   = "b1ue"
	green  = "9reen"
)

// fakeCluster is a Rollout with its Deployment and ReplicaSets on controller-runtime's
// fake client, and a Reconciler on it with a clock the test sets. cached, when set,
// answers the reconciler's cached reads instead of the API server.
type fakeCluster struct {
	t      *testing.T
	api    client.WithWatch
	r      *Reconciler
	now    time.Time
	cached func(key client.ObjectKey, obj client.Object) (bool, error)
	// writes are the reconciler's writes to objects other than the Rollout's status, as
	// "verb Kind name", in order.
	writes []string
	// fail, when set, may fail a write (after it is recorded) instead of the API server.
	fail func(verb string, obj client.Object) error
}

func fakeScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(s))
	require.NoError(t, v1alpha1.AddToScheme(s))
	require.NoError(t, gatewayv1.Install(s))
	return s
}

func newFakeCluster(t *testing.T, objs ...client.Object) *fakeCluster {
	t.Helper()
	k := &fakeCluster{t: t, now: time.Date(2026, 12, 1, 2, 0, 10, 900_000_000, time.UTC)}
	k.api = fake.NewClientBuilder().WithScheme(fakeScheme(t)).
		WithStatusSubresource(&v1alpha1.Rollout{}, &v1alpha1.AnalysisRun{}).
		WithIndex(&appsv1.ReplicaSet{}, replicaSetOwnerIndex, controllingDeployment).
		WithIndex(&v1alpha1.Rollout{}, workloadIndex, func(o client.Object) []string {
			ref := o.(*v1alpha1.Rollout).Spec.WorkloadRef
			return []string{workloadKey(ref.Kind, ref.Name)}
		}).
		WithObjects(objs...).Build()
	record := func(verb string, obj client.Object) error {
		kind := fmt.Sprintf("%T", obj)
		kind = kind[strings.LastIndex(kind, ".")+1:]
		k.writes = append(k.writes, verb+" "+kind+" "+obj.GetName())
		if k.fail != nil {
			return k.fail(verb, obj)
		}
		return nil
	}
	cache := interceptor.NewClient(k.api, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if k.cached != nil {
				if ok, err := k.cached(key, obj); ok {
					return err
				}
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := record("create", obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := record("update", obj); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := record("patch", obj); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := record("delete", obj); err != nil {
				return err
			}
			return c.Delete(ctx, obj, opts...)
		},
	})
	k.r = &Reconciler{Client: cache, APIReader: k.api, Recorder: events.NewFakeRecorder(1000), Now: func() time.Time { return k.now }}
	return k
}

// reconcile runs one pass over the Rollout.
func (k *fakeCluster) reconcile() reconcile.Result {
	k.t.Helper()
	res, err := k.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: fakeNS, Name: "web"}})
	require.NoError(k.t, err)
	return res
}

func (k *fakeCluster) rollout() *v1alpha1.Rollout {
	k.t.Helper()
	var ro v1alpha1.Rollout
	require.NoError(k.t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web"}, &ro))
	return &ro
}

func (k *fakeCluster) deployment() *appsv1.Deployment {
	k.t.Helper()
	var d appsv1.Deployment
	require.NoError(k.t, k.api.Get(context.Background(), client.ObjectKey{Namespace: fakeNS, Name: "web"}, &d))
	return &d
}

// template is the pod template of a revision.
func template(rev string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop:" + rev}}},
	}
}

// userStrategy is the Deployment's own strategy, as the user wrote it.
func userStrategy() appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: ptr.To(intstr.FromString("25%")), MaxUnavailable: ptr.To(intstr.FromString("25%")),
	}}
}

// fakeDeployment is Deployment web of n replicas running rev, adopted by the Rollout; the
// Deployment controller reports it rolled out.
func fakeDeployment(n int32, rev string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web", UID: "deploy-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(rev), Strategy: userStrategy(),
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: n, UpdatedReplicas: n, AvailableReplicas: n, ReadyReplicas: n},
	}
	raw, err := json.Marshal(originalOf(d))
	if err != nil {
		panic(err)
	}
	d.Annotations = map[string]string{originalAnnotation: string(raw), managedByAnnotation: "web"}
	d.Spec.Paused = true
	return d
}

// fakeReplicaSet is rev's ReplicaSet of d with replicas pods, all ready.
func fakeReplicaSet(d *appsv1.Deployment, rev string, replicas int32, age int) *appsv1.ReplicaSet {
	tmpl := template(rev)
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = rev
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fakeNS, Name: "web-" + rev, Labels: tmpl.Labels, Generation: 1, UID: types.UID("rs-" + rev),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 1, 0, 0, age, 0, time.UTC)),
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Template: tmpl},
		Status: appsv1.ReplicaSetStatus{ObservedGeneration: 1, Replicas: replicas, ReadyReplicas: replicas},
	}
}

// fakeRollout is Rollout web with steps, its finalizer on, at status.
func fakeRollout(steps []v1alpha1.RolloutStep, st v1alpha1.RolloutStatus) *v1alpha1.Rollout {
	return &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: "web", UID: "rollout-uid", Finalizers: []string{finalizer}, Generation: 1},
		Spec: v1alpha1.RolloutSpec{
			WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Strategy:    v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: steps}},
		},
		Status: st,
	}
}

// threeSteps are one pod, half and all of them, with a timed pause at step 2.
func threeSteps(pause time.Duration) []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1))},
		{Replicas: ptr.To(intstr.FromString("50%")), Pause: &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: pause}}},
		{Replicas: ptr.To(intstr.FromString("100%"))},
	}
}

func describe(d *appsv1.Deployment) string {
	return fmt.Sprintf("paused=%v strategy=%+v minReadySeconds=%d", d.Spec.Paused, d.Spec.Strategy.RollingUpdate, d.Spec.MinReadySeconds)
}

// fakePod is pod name of rs, Ready, with extra labels.
func fakePod(rs *appsv1.ReplicaSet, name string, labels map[string]string) *corev1.Pod {
	l := map[string]string{}
	for k, v := range rs.Spec.Template.Labels {
		l[k] = v
	}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: fakeNS, Name: name, Labels: l,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}
