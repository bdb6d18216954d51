package main

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/promgate/promgate/api/v1alpha1"
)

// verbCase is one command line on a cluster: its output, its exit code and what it left.
type verbCase struct {
	k    cluster
	args []string
	// stdout is the line printed on success; stderr the error line otherwise.
	stdout, stderr string
	code           int
	// check looks at the cluster afterwards; a failure must have changed nothing.
	check func(t *testing.T, c client.Client)
}

func (tc verbCase) run(t *testing.T, c client.WithWatch) {
	t.Helper()
	before := snapshot(t, c)
	r := runCmd(t, c, tc.args...)
	assert.Equal(t, tc.code, r.code, "exit code; stderr %q", r.stderr)
	assert.Equal(t, tc.stdout, r.stdout, "stdout")
	assert.Equal(t, tc.stderr, r.stderr, "stderr")
	if tc.code != 0 {
		assert.Equal(t, before, snapshot(t, c), "a refused command changes nothing")
	}
	if tc.check != nil {
		tc.check(t, c)
	}
}

// snapshot is the resourceVersions of the Rollout and the Deployment.
func snapshot(t *testing.T, c client.Client) [2]string {
	t.Helper()
	var d appsv1.Deployment
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, &d))
	return [2]string{getRO(t, c, "web").ResourceVersion, d.ResourceVersion}
}

func deploymentOf(t *testing.T, c client.Client) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, &d))
	return &d
}

func TestVerbs(t *testing.T) {
	s := states()
	held := func(k cluster) cluster {
		k.ro = k.ro.DeepCopy()
		k.ro.Spec.Paused = true
		return k
	}
	tests := map[string]verbCase{
		"approve a paused step": {k: s["step-paused"], args: []string{"approve", "web"},
			stdout: "Rollout web: step 1/3 approved (status.currentStepState: StepReady)\n",
			check: func(t *testing.T, c client.Client) {
				assert.Equal(t, v1alpha1.StepReady, getRO(t, c, "web").Status.CurrentStepState)
			}},
		"approve a step that is not paused": {k: s["step-metrics-analysis"], args: []string{"approve", "web"}, code: 1,
			stderr: "error: Rollout web is not paused: step 1/3 is in StepMetricsAnalysis (phase Progressing); approve moves a paused step on\n"},
		"approve with no release": {k: s["healthy"], args: []string{"approve", "web"}, code: 1,
			stderr: "error: Rollout web has no release in progress (phase Healthy): there is nothing to approve\n"},
		"approve an aborted release": {k: s["aborted-by-an-alert"], args: []string{"approve", "web"}, code: 1,
			stderr: `error: Rollout web is aborted (alert CheckoutErrors firing {alertname="CheckoutErrors", severity="page"} (webhook)): retry it or jump to a step` + "\n"},
		"approve a held release": {k: held(s["step-paused"]), args: []string{"approve", "web"}, code: 1,
			stderr: "error: Rollout web is held (spec.paused): resume it first to approve (kubectl promgate resume web)\n"},
		"approve a release waiting for its window": {k: s["paused-by-window"], args: []string{"approve", "web"}, code: 1,
			stderr: "error: Rollout web waits for its release window, which opens at 2026-12-01T02:00:00+01:00: it goes on then; approve does not open it\n"},
		"promote is approve": {k: s["step-paused"], args: []string{"promote", "web"},
			stdout: "Rollout web: step 1/3 approved (status.currentStepState: StepReady)\n"},
		"promote --full": {k: s["step-metrics-analysis"], args: []string{"promote", "web", "--full"},
			stdout: "Rollout web: promoted to the end from step 1/3 (status.promoteFull: true): the remaining steps, analyses and pauses are skipped\n",
			check:  func(t *testing.T, c client.Client) { assert.True(t, getRO(t, c, "web").Status.PromoteFull) }},
		"promote --full with no release": {k: s["completed"], args: []string{"promote", "web", "--full"}, code: 1,
			stderr: "error: Rollout web has no release in progress (phase Completed): there is nothing to promote\n"},
		"abort": {k: s["step-paused"], args: []string{"abort", "web"},
			stdout: "Rollout web: aborted at step 1/3 (status.abort: true): all traffic goes back to the stable version\n",
			check:  func(t *testing.T, c client.Client) { assert.True(t, getRO(t, c, "web").Status.Abort) }},
		"abort a held release": {k: held(s["step-paused"]), args: []string{"abort", "web"},
			stdout: "Rollout web: aborted at step 1/3 (status.abort: true): all traffic goes back to the stable version\n"},
		"abort twice": {k: s["aborted-by-an-alert"], args: []string{"abort", "web"}, code: 1,
			stderr: `error: Rollout web is already aborted (alert CheckoutErrors firing {alertname="CheckoutErrors", severity="page"} (webhook))` + "\n"},
		"retry an aborted release": {k: s["aborted-by-an-alert"], args: []string{"retry", "web"},
			stdout: "Rollout web: retried from step 1 (status.nextStepIndex: 1)\n",
			check: func(t *testing.T, c client.Client) {
				assert.Equal(t, int32(1), getRO(t, c, "web").Status.NextStepIndex)
			}},
		"retry a release that is not aborted": {k: s["step-paused"], args: []string{"retry", "web"}, code: 1,
			stderr: "error: Rollout web is not aborted (phase Paused): retry restarts an aborted release; jump moves one in progress\n"},
		"jump forward": {k: s["step-paused"], args: []string{"jump", "web", "3"},
			stdout: "Rollout web: jumped from step 1/3 to step 3/3 (status.nextStepIndex: 3)\n",
			check: func(t *testing.T, c client.Client) {
				assert.Equal(t, int32(3), getRO(t, c, "web").Status.NextStepIndex)
			}},
		"jump back while held": {k: held(s["held-by-a-human"]), args: []string{"jump", "web", "1"},
			stdout: "Rollout web: jumped from step 2/3 to step 1/3 (status.nextStepIndex: 1); it is held (spec.paused) and stays there until resumed\n"},
		"jump on an aborted release retries from there": {k: s["aborted-by-an-alert"], args: []string{"jump", "web", "2"},
			stdout: "Rollout web: retried to step 2/3 (status.nextStepIndex: 2)\n"},
		"jump past the last step": {k: s["step-paused"], args: []string{"jump", "web", "4"}, code: 1,
			stderr: "error: step 4 does not exist: Rollout web has steps 1 to 3\n"},
		"jump to step 0": {k: s["step-paused"], args: []string{"jump", "web", "0"}, code: 1,
			stderr: "error: step 0 does not exist: Rollout web has steps 1 to 3\n"},
		"jump to no number": {k: s["step-paused"], args: []string{"jump", "web", "two"}, code: 1,
			stderr: "error: step two does not exist: Rollout web has steps 1 to 3\n"},
		"pause": {k: s["step-metrics-analysis"], args: []string{"pause", "web"},
			stdout: "Rollout web: held at step 1/3 (spec.paused: true): no step is promoted until kubectl promgate resume web\n",
			check:  func(t *testing.T, c client.Client) { assert.True(t, getRO(t, c, "web").Spec.Paused) }},
		"pause twice": {k: held(s["step-paused"]), args: []string{"pause", "web"}, code: 1,
			stderr: "error: Rollout web is already held (spec.paused); resume releases it\n"},
		"resume": {k: held(s["held-by-a-human"]), args: []string{"resume", "web"},
			stdout: "Rollout web: resumed at step 2/3 (spec.paused: false)\n",
			check:  func(t *testing.T, c client.Client) { assert.False(t, getRO(t, c, "web").Spec.Paused) }},
		"resume what is not held": {k: s["step-paused"], args: []string{"resume", "web"}, code: 1,
			stderr: "error: Rollout web is not held (spec.paused is not set); it is paused at step 1/3 for another reason: Rollout is in step(1/3), and you need manually confirm to enter the next step\n"},
		"undo": {k: s["step-paused"], args: []string{"undo", "web"},
			stdout: "Rollout web: Deployment web is back on the stable revision b1ue (shop:b1ue, envoy:1.31); the controller cancels the release\n",
			check: func(t *testing.T, c client.Client) {
				tmpl := deploymentOf(t, c).Spec.Template
				assert.Equal(t, "shop:b1ue", tmpl.Spec.Containers[0].Image)
				assert.Equal(t, map[string]string{"app": "web"}, tmpl.Labels, "no pod-template-hash on the Deployment's template")
			}},
		"undo with no release": {k: s["healthy"], args: []string{"undo", "web"}, code: 1,
			stderr: "error: Rollout web has no release in progress (phase Healthy): there is nothing to undo\n"},
		"undo once undone": {k: func() cluster { k := s["step-paused"]; k.template = blue; return k }(), args: []string{"undo", "web"}, code: 1,
			stderr: "error: Deployment web already runs the stable revision b1ue: the release is being cancelled\n"},
		"set image": {k: s["healthy"], args: []string{"set", "image", "web", "app=registry.example/shop:v2"},
			stdout: "Rollout web: Deployment web now runs app=registry.example/shop:v2 (was shop:b1ue); the controller releases it from step 1\n",
			check: func(t *testing.T, c client.Client) {
				assert.Equal(t, "registry.example/shop:v2", deploymentOf(t, c).Spec.Template.Spec.Containers[0].Image)
			}},
		"set image to what it is": {k: s["healthy"], args: []string{"set", "image", "web", "app=shop:b1ue"},
			stdout: "the images are already those; nothing was changed\n"},
		"set an invalid image": {k: s["healthy"], args: []string{"set", "image", "web", "app=Shop:v2"}, code: 1,
			stderr: `error: invalid image reference "Shop:v2": invalid reference format: repository name (library/Shop) must be lowercase` + "\n"},
		"set the image of no container": {k: s["healthy"], args: []string{"set", "image", "web", "app=shop:v2", "sidecar=x:1"}, code: 1,
			stderr: `error: Deployment web has no container "sidecar" (its containers: app, proxy)` + "\n"},
		"set image without a container": {k: s["healthy"], args: []string{"set", "image", "web", "shop:v2"}, code: 1,
			stderr: `error: "shop:v2" is not CONTAINER=IMAGE` + "\n"},
		"undo of a kind it does not know": {k: func() cluster {
			k := s["step-paused"]
			k.ro = k.ro.DeepCopy()
			k.ro.Spec.WorkloadRef.Kind = "StatefulSet"
			return k
		}(), args: []string{"undo", "web"}, code: 1,
			stderr: "error: Rollout web releases a StatefulSet (web): this plugin reads and changes Deployments only\n"},
		"an unknown Rollout": {k: s["step-paused"], args: []string{"approve", "nope"}, code: 1,
			stderr: `error: Rollout "nope" not found in namespace "shop"` + "\n"},
		"the wrong namespace": {k: s["step-paused"], args: []string{"abort", "web", "-n", "default"}, code: 1,
			stderr: `error: Rollout "web" not found in namespace "default" (namespace shop has one: -n shop)` + "\n"},
		"undo of an unknown Rollout": {k: s["step-paused"], args: []string{"undo", "nope"}, code: 1,
			stderr: `error: Rollout "nope" not found in namespace "shop"` + "\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.run(t, fakeClient(t, nil, tc.k.objects()...))
		})
	}
}

// TestAStaleDecisionIsTakenAgain: the controller moves the release on between the
// command's read and its write; the write carries the read's resourceVersion, conflicts,
// and the command decides again from what the Rollout is now.
func TestAStaleDecisionIsTakenAgain(t *testing.T) {
	moved := false
	funcs := &interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
		if !moved {
			moved = true
			ro := getRO(t, c, "web")
			ro.Status.CurrentStepIndex, ro.Status.CurrentStepState, ro.Status.Phase = 2, v1alpha1.StepUpgrade, v1alpha1.RolloutPhaseProgressing
			require.NoError(t, c.Status().Update(ctx, ro))
		}
		return c.Status().Patch(ctx, obj, patch, opts...)
	}}
	c := fakeClient(t, funcs, states()["step-paused"].objects()...)
	r := runCmd(t, c, "approve", "web")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "error: Rollout web is not paused: step 2/3 is in StepUpgrade (phase Progressing); approve moves a paused step on\n", r.stderr)
	assert.Equal(t, v1alpha1.StepUpgrade, getRO(t, c, "web").Status.CurrentStepState, "step 2 was never approved on step 1's read")
}

// TestWithoutPermission: a user RBAC does not let read or patch Rollouts gets the API
// server's one line, and nothing changes.
func TestWithoutPermission(t *testing.T) {
	forbidden := func(verb, resource string) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: "promgate.io", Resource: "rollouts"}, "web",
			errors.New(`User "nobody" cannot `+verb+` resource "`+resource+`" in API group "promgate.io" in the namespace "shop"`))
	}
	t.Run("patch", func(t *testing.T) {
		c := fakeClient(t, &interceptor.Funcs{SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return forbidden("patch", "rollouts/status")
		}}, states()["step-paused"].objects()...)
		verbCase{args: []string{"approve", "web"}, code: 1,
			stderr: `error: patching Rollout shop/web: rollouts.promgate.io "web" is forbidden: User "nobody" cannot patch resource "rollouts/status" in API group "promgate.io" in the namespace "shop"` + "\n",
		}.run(t, c)
	})
	t.Run("get", func(t *testing.T) {
		deny := true
		c := fakeClient(t, &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*v1alpha1.Rollout); ok && deny {
				return forbidden("get", "rollouts")
			}
			return c.Get(ctx, key, obj, opts...)
		}}, states()["step-paused"].objects()...)
		for _, args := range [][]string{{"abort", "web"}, {"get", "rollout", "web"}, {"undo", "web"}} {
			r := runCmd(t, c, args...)
			assert.Equal(t, 1, r.code, args)
			assert.Equal(t, `error: reading Rollout shop/web: rollouts.promgate.io "web" is forbidden: User "nobody" cannot get resource "rollouts" in API group "promgate.io" in the namespace "shop"`+"\n", r.stderr, args)
		}
		r := runCmd(t, c, "status", "web")
		assert.Equal(t, statusError, r.code, "status cannot tell")
		deny = false
		assert.False(t, getRO(t, c, "web").Status.Abort)
	})
}

// TestCompletion: shells complete Rollout names.
func TestCompletion(t *testing.T) {
	other := newRollout("worker", v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPhaseHealthy})
	c := fakeClient(t, nil, append(states()["step-paused"].objects(), other)...)
	r := runCmd(t, c, "__complete", "-n", ns, "approve", "w")
	require.Zero(t, r.code, r.stderr)
	assert.Equal(t, "web\tPaused\nworker\tHealthy\n:4\n", r.stdout)
	r = runCmd(t, c, "__complete", "-n", ns, "set", "image", "wo")
	assert.Equal(t, "worker\tHealthy\n:4\n", r.stdout)
	r = runCmd(t, c, "__complete", "-n", ns, "jump", "web", "")
	assert.Equal(t, ":4\n", r.stdout, "a step number is not a Rollout")
}
