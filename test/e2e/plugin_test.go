package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbin"
)

// pluginBinary builds cmd/kubectl-promgate into the test's temporary folder.
func pluginBinary(t *testing.T) string {
	t.Helper()
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "kubectl-promgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-promgate")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "building kubectl-promgate: %s", out)
	return bin
}

// plugin runs the plugin binary against a kubeconfig in a namespace.
type plugin struct {
	bin, kubeconfig, ns string
}

// run executes one command line and returns its output and exit code.
func (p plugin) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, append([]string{"--kubeconfig", p.kubeconfig, "-n", p.ns}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err, "kubectl promgate %s", strings.Join(args, " "))
	return out.String(), errOut.String(), 0
}

// ok runs a command that must succeed and returns what it printed.
func (p plugin) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := p.run(t, args...)
	require.Zero(t, code, "kubectl promgate %s: %s%s", strings.Join(args, " "), out, errOut)
	return out
}

// refused runs a command that must fail with one line naming the problem.
func (p plugin) refused(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, code := p.run(t, args...)
	assert.NotZero(t, code, "kubectl promgate %s: %s", strings.Join(args, " "), out)
	assert.Empty(t, out, "kubectl promgate %s", strings.Join(args, " "))
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	assert.Contains(t, errOut, want, "kubectl promgate %s", strings.Join(args, " "))
}

// statusCode runs status and returns its exit code.
func (p plugin) statusCode(t *testing.T, name string, timeout time.Duration) int {
	t.Helper()
	_, _, code := p.run(t, "status", name, "--timeout", timeout.String())
	return code
}

// lockedBuffer collects a background command's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPlugin drives releases on the bed with nothing but the plugin binary: set image,
// approve, jump back, abort, retry, pause and resume, promote --full, undo; each verb's
// effect is asserted on the Rollout and on the HTTPRoute, status exits with each code,
// get -w redraws on a step change, and bad input or a user without rights gets one line.
func TestPlugin(t *testing.T) {
	fb := fixtures.StartBed(t, fixtures.BedOptions{})
	b := &rolloutBed{Cluster: fb.Cluster, pg: fb.Promgate, ns: fb.Namespace}
	kp := plugin{bin: pluginBinary(t), kubeconfig: b.Kubeconfig, ns: b.ns}
	const app = "plugin"
	b.app(t, app)
	b.httpRoute(t, app)
	b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
		Steps: []v1alpha1.RolloutStep{
			{Replicas: fixtures.Replicas("1"), Traffic: new("20%"), Pause: fixtures.Pause(0)},
			{Replicas: fixtures.Replicas("50%"), Traffic: new("50%"), Pause: fixtures.Pause(0)},
			{Replicas: fixtures.Replicas("100%"), Traffic: new("100%"), Pause: fixtures.Pause(0)},
		},
		TrafficRoutings: fixtures.GatewayRouting(app),
	}})
	userRoute := b.routeWeights(t, app)
	weights := func(canary int32) []map[string]int32 {
		return []map[string]int32{{app: 100 - canary, app + "-canary": canary}}
	}
	image := func() string {
		var d appsv1.Deployment
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: app}, &d))
		return d.Spec.Template.Spec.Containers[0].Image
	}

	assert.Equal(t, 0, kp.statusCode(t, app, time.Minute), "Healthy")
	kp.refused(t, "Rollout plugin has no release in progress (phase Healthy): there is nothing to approve", "approve", app)
	kp.refused(t, `invalid image reference "Echoserver:green"`, "set", "image", app, "app=Echoserver:green")
	kp.refused(t, `Deployment plugin has no container "web" (its containers: app)`, "set", "image", app, "web=echoserver:green")
	assert.Equal(t, fixtures.BlueImage, image(), "a refused set image changes nothing")

	out := kp.ok(t, "set", "image", app, "app=echoserver:green")
	assert.Contains(t, out, "now runs app=echoserver:green (was "+fixtures.BlueImage+")")
	b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)
	assert.Equal(t, weights(20), b.routeWeights(t, app), "step 1: 20% to green")
	assert.Equal(t, 2, kp.statusCode(t, app, time.Minute), "paused for a human")
	out = kp.ok(t, "get", "rollout", app)
	assert.Regexp(t, `Step:\s+1/3 StepPaused`, out)
	assert.Regexp(t, `Traffic:\s+desired 20% to the new version, actual 20% \(HTTPRoute plugin\)`, out)
	assert.Contains(t, out, "echoserver:green (canary)")
	assert.Contains(t, out, fixtures.BlueImage+" (stable)")
	assert.Regexp(t, `□ plugin-\S+\s+Pod\s+✔ Running`, out)

	t.Run("get -w draws a frame on a step change", func(t *testing.T) {
		var frames lockedBuffer
		watch := exec.Command(kp.bin, "--kubeconfig", kp.kubeconfig, "-n", kp.ns, "get", "rollout", app, "-w")
		watch.Stdout, watch.Stderr = &frames, &frames
		require.NoError(t, watch.Start())
		defer func() {
			_ = watch.Process.Kill()
			_ = watch.Wait()
		}()
		require.Eventually(t, func() bool { return strings.Contains(frames.String(), "1/3 StepPaused") }, 30*time.Second, 50*time.Millisecond, frames.String())
		out := kp.ok(t, "approve", app)
		assert.Equal(t, "Rollout plugin: step 1/3 approved (status.currentStepState: StepReady)\n", out)
		require.Eventually(t, func() bool { return strings.Contains(frames.String(), "2/3 StepPaused") }, time.Minute, 50*time.Millisecond, frames.String())
		assert.GreaterOrEqual(t, strings.Count(frames.String(), "Name:"), 2, "a new frame")
	})
	b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
	assert.Equal(t, weights(50), b.routeWeights(t, app), "approved: step 2, 50% to green")

	kp.refused(t, "step 4 does not exist: Rollout plugin has steps 1 to 3", "jump", app, "4")
	kp.ok(t, "jump", app, "1")
	b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)
	assert.Equal(t, weights(20), b.routeWeights(t, app), "jumped back to step 1")

	kp.ok(t, "pause", app)
	assert.True(t, b.get(t, app).Spec.Paused)
	kp.refused(t, "Rollout plugin is held (spec.paused): resume it first to approve", "approve", app)
	b.waitFor(t, app, time.Minute, "the hold's message", func(ro *v1alpha1.Rollout) bool {
		return strings.Contains(ro.Status.Message, "held by a human (spec.paused)")
	})
	assert.Equal(t, 2, kp.statusCode(t, app, time.Minute), "held for a human")
	kp.ok(t, "resume", app)
	assert.False(t, b.get(t, app).Spec.Paused)

	out = kp.ok(t, "abort", app)
	assert.Contains(t, out, "aborted at step 1/3 (status.abort: true)")
	b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
	assert.Equal(t, weights(0), b.routeWeights(t, app), "aborted: no traffic to green")
	assert.Equal(t, 1, kp.statusCode(t, app, time.Minute), "Aborted")
	kp.refused(t, "Rollout plugin is already aborted", "abort", app)

	kp.ok(t, "retry", app)
	// An aborted release already sits at step 1, paused: the retry is the phase.
	b.waitFor(t, app, time.Minute, "retried from step 1", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.Phase == v1alpha1.RolloutPhasePaused && ro.Status.CurrentStepIndex == 1 && ro.Status.CurrentStepState == v1alpha1.StepPaused
	})
	assert.Equal(t, weights(20), b.routeWeights(t, app))

	kp.ok(t, "promote", app, "--full")
	b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
	require.Eventually(t, func() bool { return b.get(t, app).Status.CanaryRevision == "" }, time.Minute, 100*time.Millisecond, "settled")
	assert.Equal(t, userRoute, b.routeWeights(t, app), "completed: the user's HTTPRoute is back")
	assert.Equal(t, 0, kp.statusCode(t, app, time.Minute), "Completed")
	green := b.get(t, app).Status.StableRevision

	kp.ok(t, "set", "image", app, "app=echoserver:purple")
	b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)
	assert.Equal(t, weights(20), b.routeWeights(t, app))
	out = kp.ok(t, "undo", app)
	assert.Contains(t, out, "is back on the stable revision "+green+" (echoserver:green)")
	assert.Equal(t, "echoserver:green", image())
	b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCancelled)
	require.Eventually(t, func() bool { return b.get(t, app).Status.CanaryRevision == "" }, time.Minute, 100*time.Millisecond, "settled")
	assert.Equal(t, userRoute, b.routeWeights(t, app), "cancelled: the user's HTTPRoute is back")
	assert.Equal(t, 1, kp.statusCode(t, app, time.Minute), "Cancelled")
	kp.refused(t, "Rollout plugin has no release in progress (phase Cancelled): there is nothing to undo", "undo", app)

	t.Run("status times out on a release held by its window", func(t *testing.T) {
		const held = "plugin-window"
		b.app(t, held)
		ro := fixtures.Rollout(b.ns, held, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{{Replicas: fixtures.Replicas("1")}}}})
		// Midnight on New Year's Day: closed for the length of any test run but a few seconds a year.
		ro.Spec.ReleaseWindow = &v1alpha1.ReleaseWindow{Schedule: "0 0 1 1 *", Duration: metav1.Duration{Duration: time.Second}}
		b.create(t, ro)
		b.waitPhase(t, held, time.Minute, v1alpha1.RolloutPhaseHealthy)
		kp.ok(t, "set", "image", held, "app=echoserver:green")
		b.waitPhase(t, held, time.Minute, v1alpha1.RolloutPhasePaused)
		assert.Equal(t, 3, kp.statusCode(t, held, 3*time.Second), "timed out waiting for the window")
		kp.refused(t, "waits for its release window", "approve", held)
	})

	t.Run("bad input is one line", func(t *testing.T) {
		kp.refused(t, `Rollout "nope" not found in namespace "default"`, "approve", "nope")
		kp.refused(t, `Rollout "nope" not found in namespace "default"`, "get", "rollout", "nope")
		assert.Equal(t, 4, kp.statusCode(t, "nope", time.Minute), "status cannot tell")
		other := plugin{bin: kp.bin, kubeconfig: kp.kubeconfig, ns: "kube-system"}
		other.refused(t, `Rollout "plugin" not found in namespace "kube-system" (namespace default has one: -n default)`, "abort", app)
	})

	t.Run("a user without rights", func(t *testing.T) {
		kubeconfig, err := b.UserKubeconfig("nobody")
		require.NoError(t, err)
		nobody := plugin{bin: kp.bin, kubeconfig: kubeconfig, ns: b.ns}
		before := b.get(t, app).ResourceVersion
		for _, args := range [][]string{{"abort", app}, {"get", "rollout", app}, {"undo", app}, {"list", "rollouts"}} {
			nobody.refused(t, "forbidden", args...)
		}
		assert.Equal(t, 4, nobody.statusCode(t, app, time.Minute))
		assert.Equal(t, before, b.get(t, app).ResourceVersion, "nothing changed")
	})
	if t.Failed() {
		out, _, _ := kp.run(t, "get", "rollout", app)
		t.Log(out)
	}
}
