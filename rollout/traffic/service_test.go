package traffic

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestNewPicksTheRouting(t *testing.T) {
	c, _ := newClient(t, nil)
	assert.IsType(t, &serviceRouter{}, New(c, target(serviceRouting())))
	assert.IsType(t, &ingressRouter{}, New(c, target(ingressRouting())))
	assert.IsType(t, &gatewayRouter{}, New(c, target(gatewayRouting())))
}

func TestServiceRouteSwitchesAllTraffic(t *testing.T) {
	ctx := context.Background()
	c, rec := newClient(t, nil, testService())
	// A new Router per call: nothing may live in memory between calls.
	route := func(w int32) error { return New(c, target(serviceRouting())).Route(ctx, w, nil) }

	require.NoError(t, route(0))
	assert.Equal(t, []string{"create *v1.Service web-canary", "update *v1.Service web"}, rec.reset(),
		"the canary Service exists before the stable one is pinned")
	stable := getService(t, c, "web")
	assert.Equal(t, pinned(stableRev), stable.Spec.Selector)
	assert.JSONEq(t, `{"app":"web","tier":"front"}`, stable.Annotations[AnnotationOriginalSelector])
	assert.Equal(t, "shop", stable.Annotations["team"])

	canary := getService(t, c, "web-canary")
	assert.Equal(t, map[string]string{LabelRollout: "web"}, canary.Labels)
	require.Len(t, canary.OwnerReferences, 1)
	owner := canary.OwnerReferences[0]
	assert.Equal(t, metav1.OwnerReference{APIVersion: "promgate.io/v1alpha1", Kind: "Rollout", Name: "web", UID: "rollout-uid",
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}, owner)
	assert.Equal(t, corev1.ServiceTypeClusterIP, canary.Spec.Type)
	assert.Empty(t, canary.Spec.ClusterIP)
	assert.Empty(t, canary.Spec.ClusterIPs)
	assert.Equal(t, pinned(canaryRev), canary.Spec.Selector)
	wantPorts := testService().Spec.Ports
	wantPorts[0].NodePort, wantPorts[1].NodePort = 0, 0
	assert.Equal(t, wantPorts, canary.Spec.Ports)

	require.NoError(t, route(0))
	assert.Empty(t, rec.reset(), "a second Route(0) writes nothing")

	require.NoError(t, route(100))
	assert.Equal(t, []string{"update *v1.Service web"}, rec.reset())
	assert.Equal(t, pinned(canaryRev), getService(t, c, "web").Spec.Selector, "100% is the blue-green switch")
	require.NoError(t, route(100))
	assert.Empty(t, rec.reset(), "a second Route(100) writes nothing")

	require.NoError(t, route(0))
	assert.Equal(t, pinned(stableRev), getService(t, c, "web").Spec.Selector, "and back")
	assert.JSONEq(t, `{"app":"web","tier":"front"}`, getService(t, c, "web").Annotations[AnnotationOriginalSelector],
		"the saved original is never overwritten by a pinned selector")
}

func TestServiceRouteRefusesWhatItCannotDo(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		target  func(*Target)
		weight  int32
		matches []v1alpha1.HTTPRouteMatch
		want    string
	}{
		{name: "a partial weight", weight: 30, want: "only switch 0% or 100%, not 30%"},
		{name: "header matches", weight: 0, matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}, want: "cannot match headers"},
		{name: "a weight over 100", weight: 101, want: "outside 0-100"},
		{name: "a negative weight", weight: -1, want: "outside 0-100"},
		{name: "no canary revision", target: func(t *Target) { t.CanaryRevision = "" }, want: "needs both revisions"},
		{name: "no Rollout", target: func(t *Target) { t.Rollout = nil }, want: "has no Rollout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newClient(t, nil, testService())
			tg := target(serviceRouting())
			if tt.target != nil {
				tt.target(&tg)
			}
			err := New(c, tg).Route(ctx, tt.weight, tt.matches)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, rec.reset(), "nothing written")
		})
	}
}

func TestServiceFinishAndUnpinRestoreExactly(t *testing.T) {
	for _, tt := range []struct {
		name        string
		annotations map[string]string
		routeTo     int32
		winner      string
	}{
		{name: "completion", annotations: map[string]string{"team": "shop"}, routeTo: 100, winner: canaryRev},
		{name: "abort after the switch", annotations: map[string]string{"team": "shop"}, routeTo: 100, winner: stableRev},
		{name: "abort before the switch", routeTo: 0, winner: stableRev},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			orig := testService()
			orig.Annotations = tt.annotations
			c, rec := newClient(t, nil, orig.DeepCopy())
			before := getService(t, c, "web")
			r := func() Router { return New(c, target(serviceRouting())) }

			require.NoError(t, r().Route(ctx, tt.routeTo, nil))
			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Equal(t, pinned(tt.winner), getService(t, c, "web").Spec.Selector, "pinned to the winner")
			assert.True(t, exists(t, c, &corev1.Service{}, "web-canary"), "the canary Service stays until Unpin")
			rec.reset()
			require.NoError(t, r().Finish(ctx, tt.winner))
			assert.Empty(t, rec.reset(), "a second Finish writes nothing")

			require.NoError(t, r().Unpin(ctx))
			after := getService(t, c, "web")
			assert.Equal(t, before.Spec, after.Spec)
			assert.Equal(t, before.Annotations, after.Annotations, "annotations exactly as they were, nil included")
			assert.Equal(t, before.Labels, after.Labels)
			assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"))
			rec.reset()
			require.NoError(t, r().Unpin(ctx))
			assert.Empty(t, rec.reset(), "a second Unpin writes nothing")
		})
	}
}

func TestFinishRefusesAWinnerThatIsNeitherRevision(t *testing.T) {
	for _, winner := range []string{"", "0123456789"} {
		c, rec := newClient(t, nil, testService())
		err := New(c, target(serviceRouting())).Finish(context.Background(), winner)
		require.Error(t, err, "winner %q", winner)
		assert.Contains(t, err.Error(), "neither the stable")
		assert.Empty(t, rec.reset())
	}
}

func TestCleanupToleratesAServiceTheUserDeleted(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, nil, testService())
	r := New(c, target(serviceRouting()))
	require.NoError(t, r.Route(ctx, 0, nil))
	require.NoError(t, c.Delete(ctx, testService()))
	require.NoError(t, r.Finish(ctx, stableRev), "a deleted Rollout must not wait forever for a Service that is gone")
	require.NoError(t, r.Unpin(ctx))
	assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"))
}

func TestTheUsersSameNamedServiceIsNeverTouched(t *testing.T) {
	ctx := context.Background()
	theirs := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-canary"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "other"}},
	}
	c, rec := newClient(t, nil, testService(), theirs)
	r := New(c, target(serviceRouting()))

	err := r.Validate(ctx, nil, stepsPath)
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, routingField+".service", fe.Field)

	require.ErrorContains(t, r.Route(ctx, 0, nil), "was not generated by Rollout web")
	require.NoError(t, r.Finish(ctx, stableRev))
	require.NoError(t, r.Unpin(ctx))
	assert.Equal(t, map[string]string{"app": "other"}, getService(t, c, "web-canary").Spec.Selector)
	for _, w := range rec.reset() {
		assert.NotContains(t, w, "web-canary")
	}
}

func TestServiceValidate(t *testing.T) {
	withSelector := func(sel map[string]string) *corev1.Service {
		s := testService()
		s.Spec.Selector = sel
		return s
	}
	withAnnotation := func(v string) *corev1.Service {
		s := testService()
		s.Annotations[AnnotationOriginalSelector] = v
		return s
	}
	tests := []struct {
		name    string
		objs    []client.Object
		target  func(*Target)
		steps   []v1alpha1.RolloutStep
		field   string // "" for valid
		message string
	}{
		{name: "blue-green switch", objs: []client.Object{testService()},
			steps: []v1alpha1.RolloutStep{{Traffic: traffic("0%")}, {}, {Traffic: traffic("100%")}}},
		{name: "a partial weight", objs: []client.Object{testService()},
			steps: []v1alpha1.RolloutStep{{Traffic: traffic("0%")}, {}, {Traffic: traffic("30%")}},
			field: steps + "[2].traffic", message: "a Service alone can only switch 0% or 100%; add an ingress or gateway routing"},
		{name: "header matches", objs: []client.Object{testService()},
			steps: []v1alpha1.RolloutStep{{Matches: []v1alpha1.HTTPRouteMatch{header("X-Canary", "always")}}},
			field: steps + "[0].matches", message: "a Service alone cannot route by header; add an ingress or gateway routing"},
		{name: "malformed traffic", objs: []client.Object{testService()},
			steps: []v1alpha1.RolloutStep{{Traffic: traffic("30")}},
			field: steps + "[0].traffic", message: `"30" is not a percentage from 0% to 100%`},
		{name: "missing Service",
			field: routingField + ".service", message: `Service "web" not found in namespace "shop"`},
		{name: "Service without a selector", objs: []client.Object{withSelector(nil)},
			field: routingField + ".service", message: "has no selector"},
		{name: "Service already selecting a revision", objs: []client.Object{withSelector(map[string]string{podTemplateHash: "abc"})},
			field: routingField + ".service", message: "already selects by pod-template-hash"},
		{name: "corrupt saved selector", objs: []client.Object{withAnnotation("{not json")},
			field: routingField + ".service", message: "is not a JSON selector"},
		{name: "pinned by an earlier Route", objs: []client.Object{withAnnotation(`{"app":"web"}`)}},
		{name: "canary name too long", objs: []client.Object{testService()},
			target: func(t *Target) { t.Routing.Service = "a-service-name-that-is-fifty-seven-characters-long-abcdefg" },
			field:  routingField + ".service", message: "is not a valid name"},
		{name: "Rollout name too long for a label", objs: []client.Object{testService()},
			target: func(t *Target) { t.Rollout.Name = strings.Repeat("r", 64) },
			field:  "metadata.name", message: "must be no more than 63"},
		{name: "no service", target: func(t *Target) { t.Routing.Service = "" },
			field: routingField + ".service", message: "Required value"},
		{name: "ingress and gateway", objs: []client.Object{testService()},
			target: func(t *Target) { t.Routing = gatewayRouting(); t.Routing.Ingress = ingressRouting().Ingress },
			field:  routingField, message: "mutually exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newClient(t, nil, tt.objs...)
			tg := target(serviceRouting())
			if tt.target != nil {
				tt.target(&tg)
			}
			err := New(c, tg).Validate(context.Background(), tt.steps, stepsPath)
			assert.Empty(t, rec.reset(), "Validate changes nothing")
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *field.Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
			assert.Contains(t, fe.Error(), tt.message)
			assert.Equal(t, fe.Error(), err.Error(), "the error is the field error itself")
		})
	}
}

func TestValidateSurfacesAPIErrorsAsPlainErrors(t *testing.T) {
	boom := errors.New("connection refused")
	c, _ := newClient(t, nil, testService())
	failing := interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return boom
		},
	})
	err := New(failing, target(serviceRouting())).Validate(context.Background(), nil, stepsPath)
	require.ErrorIs(t, err, boom)
	var fe *field.Error
	assert.False(t, errors.As(err, &fe), "an unreachable API server is not the user's mistake")
}

func TestConflictsAreRetriedNotSurfaced(t *testing.T) {
	ctx := context.Background()
	// Another writer changes the Service between our read and our write, once: the fake
	// API server then refuses the stale update with a real Conflict.
	raced := false
	extra := &interceptor.Funcs{
		Update: func(ctx context.Context, inner client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if svc, ok := obj.(*corev1.Service); ok && svc.Name == "web" && !raced {
				raced = true
				var theirs corev1.Service
				require.NoError(t, inner.Get(ctx, client.ObjectKeyFromObject(svc), &theirs))
				theirs.Labels = map[string]string{"edited-by": "someone-else"}
				require.NoError(t, inner.Update(ctx, &theirs))
			}
			return inner.Update(ctx, obj, opts...)
		},
	}
	c, rec := newClient(t, extra, testService())
	require.NoError(t, New(c, target(serviceRouting())).Route(ctx, 0, nil))
	assert.Equal(t, []string{"create *v1.Service web-canary", "update *v1.Service web", "update *v1.Service web"}, rec.reset(),
		"the conflicting update is retried after a fresh read")
	svc := getService(t, c, "web")
	assert.Equal(t, pinned(stableRev), svc.Spec.Selector)
	assert.Equal(t, "someone-else", svc.Labels["edited-by"], "the other writer's change survives")
}

func TestInjectedConflictAndAlreadyExistsAreRetried(t *testing.T) {
	ctx := context.Background()
	gr := schema.GroupResource{Resource: "services"}
	failed := map[string]bool{}
	once := func(verb string) bool {
		first := !failed[verb]
		failed[verb] = true
		return first
	}
	extra := &interceptor.Funcs{
		Create: func(ctx context.Context, inner client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if once("create") {
				return apierrors.NewAlreadyExists(gr, obj.GetName())
			}
			return inner.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, inner client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if once("update") {
				return apierrors.NewConflict(gr, obj.GetName(), errors.New("the object has been modified"))
			}
			return inner.Update(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, inner client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if once("delete") {
				return apierrors.NewConflict(gr, obj.GetName(), errors.New("precondition failed"))
			}
			return inner.Delete(ctx, obj, opts...)
		},
	}
	c, rec := newClient(t, extra, testService())
	r := New(c, target(serviceRouting()))
	require.NoError(t, r.Route(ctx, 100, nil))
	require.NoError(t, r.Finish(ctx, canaryRev))
	require.NoError(t, r.Unpin(ctx))
	assert.Equal(t, []string{
		"create *v1.Service web-canary", "create *v1.Service web-canary",
		"update *v1.Service web", "update *v1.Service web",
		"update *v1.Service web", // Unpin restores it; Finish found it pinned to the canary already
		"delete *v1.Service web-canary", "delete *v1.Service web-canary",
	}, rec.reset())
	assert.Equal(t, testService().Spec.Selector, getService(t, c, "web").Spec.Selector)
	assert.False(t, exists(t, c, &corev1.Service{}, "web-canary"))
}

func TestPinStableBeforeTheCanaryExists(t *testing.T) {
	ctx := context.Background()
	for _, routing := range []v1alpha1.TrafficRouting{serviceRouting(), ingressRouting(), gatewayRouting()} {
		c, rec := newClient(t, nil, testService(), testIngress(), testRoute())
		tg := target(routing)
		tg.CanaryRevision = ""
		require.NoError(t, New(c, tg).PinStable(ctx))
		assert.Equal(t, []string{"update *v1.Service web"}, rec.reset(), "only the stable Service is written")
		assert.Equal(t, pinned(stableRev), getService(t, c, "web").Spec.Selector)
		require.NoError(t, New(c, tg).PinStable(ctx))
		assert.Empty(t, rec.reset(), "pinning twice writes nothing")

		require.NoError(t, New(c, tg).Unpin(ctx))
		assert.Equal(t, testService().Spec.Selector, getService(t, c, "web").Spec.Selector, "and unpinning restores it")
	}
	tg := target(serviceRouting())
	tg.StableRevision = ""
	c, _ := newClient(t, nil, testService())
	assert.Error(t, New(c, tg).PinStable(ctx))
}
