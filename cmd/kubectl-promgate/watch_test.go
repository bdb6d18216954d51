package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestJudge(t *testing.T) {
	s := states()
	status := func(name string, f func(ro *v1alpha1.Rollout)) *v1alpha1.Rollout {
		ro := s[name].ro.DeepCopy()
		if f != nil {
			f(ro)
		}
		return ro
	}
	w := &deployment{}
	w.d = deploymentOf(t, fakeClient(t, nil, s["healthy"].objects()...))
	tests := map[string]struct {
		ro    *v1alpha1.Rollout
		final bool
		code  int
	}{
		"healthy":                   {status("healthy", nil), true, statusDone},
		"completed and settled":     {status("completed", nil), true, statusDone},
		"completed, old pods going": {status("completed", func(ro *v1alpha1.Rollout) { ro.Status.CanaryRevision = green; ro.Status.StableRevision = blue }), false, 0},
		"progressing":               {status("step-metrics-analysis", nil), false, 0},
		"paused for a human":        {status("step-paused", nil), true, statusPaused},
		"held by a human":           {status("held-by-a-human", nil), true, statusPaused},
		"held by its window":        {status("paused-by-window", nil), false, 0},
		"aborted":                   {status("aborted-by-an-alert", nil), true, statusFailed},
		"cancelled":                 {status("healthy", func(ro *v1alpha1.Rollout) { ro.Status.Phase = v1alpha1.RolloutPhaseCancelled }), true, statusFailed},
		"disabled":                  {status("healthy", func(ro *v1alpha1.Rollout) { ro.Status.Phase = v1alpha1.RolloutPhaseDisabled }), true, statusError},
		"an invalid spec": {status("healthy", func(ro *v1alpha1.Rollout) {
			ro.Status.Conditions = []metav1.Condition{{Type: "Valid", Status: metav1.ConditionFalse, Reason: "InvalidSpec", Message: "spec.strategy.canary.steps[0].replicas: Invalid value"}}
		}), true, statusFailed},
		"a reference not created yet": {status("healthy", func(ro *v1alpha1.Rollout) {
			ro.Status.Conditions = []metav1.Condition{{Type: "Valid", Status: metav1.ConditionFalse, Reason: "InvalidReference", Message: `AnalysisTemplate "error-rate" not found`}}
		}), false, 0},
		"a spec the controller has not seen": {status("aborted-by-an-alert", func(ro *v1alpha1.Rollout) { ro.Generation = 2 }), false, 0},
		"a template the controller has not seen": {status("aborted-by-an-alert", func(ro *v1alpha1.Rollout) {
			ro.Status.ObservedWorkloadGeneration = 2
		}), false, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := judge(tc.ro, w)
			assert.Equal(t, tc.final, v.final, v.line)
			if tc.final {
				assert.Equal(t, tc.code, v.code, v.line)
			}
		})
	}
}

// setStatus changes the stored Rollout's status as the controller would.
func setStatus(t *testing.T, c client.Client, f func(st *v1alpha1.RolloutStatus)) {
	t.Helper()
	ro := getRO(t, c, "web")
	f(&ro.Status)
	require.NoError(t, c.Status().Update(context.Background(), ro))
}

// background runs a command line until it ends; done gives its exit code.
func background(c client.WithWatch, args ...string) (ctx context.Context, cancel func(), stdout, stderr *safeBuffer, done chan int) {
	ctx, cancel = context.WithCancel(context.Background())
	stdout, stderr, done = &safeBuffer{}, &safeBuffer{}, make(chan int, 1)
	go func() { done <- runWith(ctx, c, stdout, stderr, args...) }()
	return ctx, cancel, stdout, stderr, done
}

func TestStatusWaitsAndExits(t *testing.T) {
	c := fakeClient(t, nil, states()["step-metrics-analysis"].objects()...)
	_, cancel, stdout, stderr, done := background(c, "status", "web")
	defer cancel()
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "StepMetricsAnalysis") }, 5*time.Second, 10*time.Millisecond)
	setStatus(t, c, func(st *v1alpha1.RolloutStatus) {
		st.Phase, st.CurrentStepState, st.Message = v1alpha1.RolloutPhasePaused, v1alpha1.StepPaused, "Rollout is in step(1/3), and you need manually confirm"
	})
	select {
	case code := <-done:
		assert.Equal(t, statusPaused, code, stderr.String())
	case <-time.After(5 * time.Second):
		t.Fatal("status did not see the pause")
	}
	assert.Equal(t, "◌ Progressing step 1/3 StepMetricsAnalysis: Rollout is in step(1/3), and analysis web-9reen-step1-1764548400000 is measuring\n"+
		"॥ Paused step 1/3 StepPaused: Rollout is in step(1/3), and you need manually confirm\n", stdout.String(), "one line per change")

	for name, tc := range map[string]struct {
		state string
		code  int
	}{"completed": {"completed", statusDone}, "aborted": {"aborted-by-an-alert", statusFailed}} {
		t.Run(name, func(t *testing.T) {
			r := runCmd(t, fakeClient(t, nil, states()[tc.state].objects()...), "status", "web")
			assert.Equal(t, tc.code, r.code, r.stderr)
		})
	}
}

func TestStatusTimesOut(t *testing.T) {
	c := fakeClient(t, nil, states()["paused-by-window"].objects()...)
	r := runCmd(t, c, "status", "web", "--timeout", "300ms")
	assert.Equal(t, statusTimeout, r.code)
	assert.Equal(t, "error: timed out after 300ms; last: ॥ Paused step 1/3 StepPaused: the new revision waits for the release window: next opening at 2026-12-01T02:00:00+01:00 (Europe/Paris)\n", r.stderr)
}

func TestStatusBadInput(t *testing.T) {
	c := fakeClient(t, nil, states()["healthy"].objects()...)
	for _, args := range [][]string{{"status", "nope"}, {"status"}, {"status", "web", "--timeout", "soon"}} {
		r := runCmd(t, c, args...)
		assert.Equal(t, statusError, r.code, args)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	}
}

// TestGetWatchRedraws: get -w draws a new frame when the step changes, and no more than
// 5 frames a second however often the Rollout changes.
func TestGetWatchRedraws(t *testing.T) {
	c := fakeClient(t, nil, states()["step-paused"].objects()...)
	_, cancel, stdout, stderr, done := background(c, "get", "rollout", "web", "-w")
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "1/3 StepPaused") }, 5*time.Second, 10*time.Millisecond)
	setStatus(t, c, func(st *v1alpha1.RolloutStatus) {
		st.CurrentStepIndex, st.CurrentStepState, st.Phase = 2, v1alpha1.StepUpgrade, v1alpha1.RolloutPhaseProgressing
	})
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "2/3 StepUpgrade") }, 5*time.Second, 10*time.Millisecond, "a new frame for the new step")
	assert.Equal(t, 2, strings.Count(stdout.String(), "Name:"), "the first frame and one for the change")

	start := time.Now()
	for i := range 50 {
		setStatus(t, c, func(st *v1alpha1.RolloutStatus) {
			st.Message = "change " + string(rune('a'+i%26)) + string(rune('a'+i/26))
		})
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	elapsed := time.Since(start)
	frames := strings.Count(stdout.String(), "Name:") - 2
	assert.LessOrEqual(t, frames, int(elapsed/redrawEvery)+1, "at most 5 frames a second")
	assert.Positive(t, frames)
	cancel()
	select {
	case code := <-done:
		assert.Zero(t, code, stderr.String())
	case <-time.After(5 * time.Second):
		t.Fatal("get -w did not stop")
	}
}
