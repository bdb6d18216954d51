package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "no golden file: run go test ./cmd/kubectl-promgate -update")
	assert.Equal(t, string(want), got, "rendering changed: compare, then go test ./cmd/kubectl-promgate -update")
}

// window opens daily at 02:00 in Paris for two hours; the tests' clock is 01:30 there.
func window() *v1alpha1.ReleaseWindow {
	return &v1alpha1.ReleaseWindow{Schedule: "0 2 * * *", Duration: metav1.Duration{Duration: 2 * time.Hour}, TimeZone: "Europe/Paris"}
}

// states are the Rollout states get and list are drawn in.
func states() map[string]cluster {
	both := map[string]int32{blue: 5, green: 1}
	ro := func(st v1alpha1.RolloutStatus) *v1alpha1.Rollout { return newRollout("web", st) }
	with := func(st v1alpha1.RolloutStatus, f func(*v1alpha1.RolloutStatus)) v1alpha1.RolloutStatus {
		f(&st)
		return st
	}
	analysed := func(r *v1alpha1.Rollout, phase v1alpha1.AnalysisPhase, ms ...v1alpha1.Measurement) []*v1alpha1.AnalysisRun {
		return []*v1alpha1.AnalysisRun{run(r, "web-9reen-step1-1764548400000", green, phase, ms...)}
	}
	ok := measured(v1alpha1.AnalysisPhaseSuccessful, "[0.012]")
	out := map[string]cluster{}

	healthy := ro(v1alpha1.RolloutStatus{ObservedGeneration: 1, ObservedWorkloadGeneration: 3, Phase: v1alpha1.RolloutPhaseHealthy,
		StableRevision: blue, Message: "workload deployment is completed"})
	out["healthy"] = cluster{ro: healthy, template: blue, replicas: map[string]int32{blue: 5}}

	out["step-upgrade"] = cluster{ro: ro(with(releasingAt(1, v1alpha1.StepUpgrade), func(st *v1alpha1.RolloutStatus) {
		st.Message += ", and upgrade workload to new version: 0/1 new pods ready"
	})), template: green, replicas: both, unready: map[string]bool{green: true}}

	out["step-traffic-routing"] = cluster{ro: ro(with(releasingAt(1, v1alpha1.StepTrafficRouting), func(st *v1alpha1.RolloutStatus) {
		st.Message += ", and the canary Service web-canary has no ready endpoints yet"
	})), template: green, replicas: both, weight: ptr.To[int32](0)}

	measuring := ro(with(releasingAt(1, v1alpha1.StepMetricsAnalysis), func(st *v1alpha1.RolloutStatus) {
		st.Message += ", and analysis web-9reen-step1-1764548400000 is measuring"
		st.AnalysisRuns.Step = "web-9reen-step1-1764548400000"
	}))
	out["step-metrics-analysis"] = cluster{ro: measuring, template: green, replicas: both, weight: ptr.To[int32](20), header: true,
		runs: analysed(measuring, v1alpha1.AnalysisPhaseRunning, ok, measured(v1alpha1.AnalysisPhaseInconclusive, ""))}

	paused := ro(with(releasingAt(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
		st.Message += ", and you need manually confirm to enter the next step"
	}))
	out["step-paused"] = cluster{ro: paused, template: green, replicas: both, weight: ptr.To[int32](20), header: true,
		runs: analysed(paused, v1alpha1.AnalysisPhaseSuccessful, ok, ok, ok)}

	ready := ro(releasingAt(1, v1alpha1.StepReady))
	out["step-ready"] = cluster{ro: ready, template: green, replicas: both, weight: ptr.To[int32](20), header: true,
		runs: analysed(ready, v1alpha1.AnalysisPhaseSuccessful, ok, ok, ok)}

	held := ro(with(releasingAt(2, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
		st.Message += ", and held by a human (spec.paused): no step is promoted until it is resumed"
	}))
	held.Spec.Paused = true
	out["held-by-a-human"] = cluster{ro: held, template: green, replicas: map[string]int32{blue: 5, green: 3}, weight: ptr.To[int32](50),
		runs: analysed(held, v1alpha1.AnalysisPhaseSuccessful, ok, ok, ok)}

	byWindow := ro(with(releasingAt(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
		st.Held = true
		st.Message = "the new revision waits for the release window: next opening at 2026-12-01T02:00:00+01:00 (Europe/Paris)"
		st.Window = &v1alpha1.WindowStatus{NextOpen: "2026-12-01T02:00:00+01:00"}
	}))
	byWindow.Spec.ReleaseWindow = window()
	out["paused-by-window"] = cluster{ro: byWindow, template: green, replicas: map[string]int32{blue: 5}}

	alerted := ro(with(releasingAt(1, v1alpha1.StepPaused), func(st *v1alpha1.RolloutStatus) {
		st.Phase = v1alpha1.RolloutPhaseAborted
		st.AbortReason = `alert CheckoutErrors firing {alertname="CheckoutErrors", severity="page"} (webhook)`
		st.Message = "aborted at step 2: " + st.AbortReason + "; all traffic is on the stable version"
		st.Report = &v1alpha1.ReleaseReport{Revision: green, Outcome: v1alpha1.RolloutPhaseAborted, DecidedBy: v1alpha1.DecidedByAlert}
	}))
	alerted.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="CheckoutErrors"`}}}}
	out["aborted-by-an-alert"] = cluster{ro: alerted, template: green, replicas: map[string]int32{blue: 5, green: 3}, weight: ptr.To[int32](0),
		runs: analysed(alerted, v1alpha1.AnalysisPhaseSuccessful, ok, ok, ok)}

	completed := ro(v1alpha1.RolloutStatus{ObservedGeneration: 1, ObservedWorkloadGeneration: 3, Phase: v1alpha1.RolloutPhaseCompleted,
		StableRevision: green, CurrentStepIndex: 3, CurrentStepState: v1alpha1.StepCompleted, Message: "Rollout progressing has been completed"})
	completed.Spec.ReleaseWindow = window()
	out["completed"] = cluster{ro: completed, template: green, replicas: map[string]int32{blue: 0, green: 5},
		runs: analysed(completed, v1alpha1.AnalysisPhaseSuccessful, ok, ok, ok)}
	return out
}

func TestGetRendering(t *testing.T) {
	for name, k := range states() {
		t.Run(name, func(t *testing.T) {
			r := runCmd(t, fakeClient(t, nil, k.objects()...), "get", "rollout", "web")
			require.Zero(t, r.code, r.stderr)
			golden(t, "get-"+name+".golden", r.stdout)
		})
	}
}

func TestListRendering(t *testing.T) {
	var ros []v1alpha1.Rollout
	for name, k := range states() {
		ro := k.ro.DeepCopy()
		ro.Name = name
		ros = append(ros, *ro)
	}
	other := newRollout("api", v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPhaseHealthy, StableRevision: blue})
	other.Namespace = "payments"
	other.Spec.WorkloadRef.Name = "api"
	other.Spec.Strategy = v1alpha1.RolloutStrategy{BlueGreen: other.Spec.Strategy.Canary}
	deps := []appsv1.Deployment{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](5)}, Status: appsv1.DeploymentStatus{ReadyReplicas: 6}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}, Status: appsv1.DeploymentStatus{ReadyReplicas: 2}},
	}
	var b bytes.Buffer
	renderList(&b, ros, deps, false, now, false)
	golden(t, "list.golden", b.String())

	b.Reset()
	renderList(&b, append(ros, *other), deps, true, now, false)
	golden(t, "list-all-namespaces.golden", b.String())
}

// TestListCommand runs list on the fake cluster: the namespace's Rollouts, or every
// namespace's with -A, and the objects as JSON.
func TestListCommand(t *testing.T) {
	k := states()["step-paused"]
	other := newRollout("api", v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutPhaseHealthy})
	other.Namespace = "payments"
	c := fakeClient(t, nil, append(k.objects(), other)...)

	r := runCmd(t, c, "list", "rollouts")
	require.Zero(t, r.code, r.stderr)
	assert.Regexp(t, `^NAME\s+STRATEGY\s+STATUS\s+STEP\s+TRAFFIC\s+READY\s+AGE\s+WINDOW\nweb\s+Canary\s+॥ Paused\s+1/3\s+20%\s+6/5\s+2d\s+-\n$`, r.stdout)

	r = runCmd(t, c, "list", "rollouts", "-A")
	require.Zero(t, r.code, r.stderr)
	assert.Regexp(t, `(?m)^NAMESPACE\s+NAME.*\npayments\s+api\s+Canary\s+✔ Healthy\s+-\s+-\s+-\s+2d\s+-\nshop\s+web\s`, r.stdout)

	r = runCmd(t, c, "list", "rollouts", "-o", "json")
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"kind": "RolloutList"`)
	assert.Contains(t, r.stdout, `"name": "web"`)

	r = runCmd(t, c, "list", "rollouts", "-n", "empty")
	assert.Zero(t, r.code)
	assert.Equal(t, "No Rollouts in namespace empty.\n", r.stderr)
}

func TestGetOutput(t *testing.T) {
	c := fakeClient(t, nil, states()["step-paused"].objects()...)
	r := runCmd(t, c, "get", "rollout", "web", "-o", "yaml")
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stdout, "apiVersion: promgate.io/v1alpha1\nkind: Rollout\n")
	assert.Contains(t, r.stdout, "currentStepState: StepPaused")

	r = runCmd(t, c, "get", "rollout", "web", "-o", "wide")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "error: -o wide: want json or yaml\n", r.stderr)
}

// TestColour: colour only on a terminal, and never with --no-color; the columns stay
// aligned either way.
func TestColour(t *testing.T) {
	c := fakeClient(t, nil, states()["step-paused"].objects()...)
	frame := func(terminal bool, args ...string) string {
		var stdout, stderr safeBuffer
		a := &app{stdout: &stdout, stderr: &stderr, now: func() time.Time { return now }, terminal: terminal}
		a.connect = func() (client.WithWatch, error) { return c, nil }
		a.flags = newTestFlags()
		require.Zero(t, a.run(context.Background(), append([]string{"get", "rollout", "web", "-n", ns}, args...)), stderr.String())
		return stdout.String()
	}
	plain := frame(false)
	assert.NotContains(t, plain, "\x1b[")
	coloured := frame(true)
	assert.Contains(t, coloured, colorYellow+"॥ Paused"+colorReset)
	assert.Equal(t, plain, stripANSI(coloured), "colour adds escapes and nothing else")
	assert.Equal(t, plain, frame(true, "--no-color"))
}
