package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

// rolloutBed is the simulated cluster, the traffic simulator and a Prometheus scraping
// it, and the promgate controller process.
type rolloutBed struct {
	*testbed.Cluster
	sim *trafficsim.Simulator
	pg  *testbed.Promgate
	ns  string
}

// entry points every scenario sends traffic to, named after the scenario's app.
var simEntries = []trafficsim.Entry{
	{Kind: trafficsim.KindHTTPRoute, Name: "bg-ok", RPS: 50},
	{Kind: trafficsim.KindHTTPRoute, Name: "bg-bad", RPS: 50},
	{Kind: trafficsim.KindIngress, Name: "canary-nginx", RPS: 50, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1},
	{Kind: trafficsim.KindHTTPRoute, Name: "canary-gw", RPS: 50, Headers: map[string]string{"X-Canary": "always"}, HeaderShare: 0.1},
	{Kind: trafficsim.KindHTTPRoute, Name: "quiet", RPS: 0},
	{Kind: trafficsim.KindHTTPRoute, Name: "background", RPS: 50},
}

// startRolloutBed starts the bed with the simulator configured by sc (its entries and
// tick) and the error-rate template (a canary fails at 5% errors).
func startRolloutBed(t *testing.T, sc trafficsim.Config) *rolloutBed {
	t.Helper()
	fb := fixtures.StartBed(t, fixtures.BedOptions{Simulator: sc})
	b := &rolloutBed{Cluster: fb.Cluster, sim: fb.Sim, pg: fb.Promgate, ns: fb.Namespace}
	b.create(t, fixtures.ErrorRateTemplate(b.ns, "error-rate", "0.05"))
	return b
}

func (b *rolloutBed) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		require.NoError(t, b.Client.Create(context.Background(), o), "creating %T %s", o, o.GetName())
	}
}

// app creates a Deployment of 5 replicas with its Service.
func (b *rolloutBed) app(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d := fixtures.Deployment(b.ns, name, 5)
	b.create(t, d, fixtures.Service(b.ns, name))
	return d
}

func (b *rolloutBed) httpRoute(t *testing.T, name string) {
	t.Helper()
	b.create(t, fixtures.HTTPRoute(b.ns, name))
}

func (b *rolloutBed) ingress(t *testing.T, name string) {
	t.Helper()
	b.create(t, fixtures.Ingress(b.ns, name))
}

func (b *rolloutBed) rollout(t *testing.T, name string, strategy v1alpha1.RolloutStrategy) {
	t.Helper()
	b.create(t, fixtures.Rollout(b.ns, name, strategy))
	b.waitPhase(t, name, time.Minute, v1alpha1.RolloutPhaseHealthy)
}

func (b *rolloutBed) get(t *testing.T, name string) *v1alpha1.Rollout {
	t.Helper()
	var ro v1alpha1.Rollout
	require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: name}, &ro))
	return &ro
}

// waitPhase waits until the Rollout is in one of phases and returns it.
func (b *rolloutBed) waitPhase(t *testing.T, name string, within time.Duration, phases ...v1alpha1.RolloutPhase) *v1alpha1.Rollout {
	t.Helper()
	return b.waitFor(t, name, within, fmt.Sprintf("phase %v", phases), func(ro *v1alpha1.Rollout) bool {
		for _, p := range phases {
			if ro.Status.Phase == p {
				return true
			}
		}
		return false
	})
}

// waitStep waits until the Rollout is at step in state and returns it.
func (b *rolloutBed) waitStep(t *testing.T, name string, step int32, state v1alpha1.StepState, within time.Duration) *v1alpha1.Rollout {
	t.Helper()
	return b.waitFor(t, name, within, fmt.Sprintf("step %d %s", step, state), func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CurrentStepIndex == step && ro.Status.CurrentStepState == state
	})
}

// waitFor polls the Rollout until done says so; when it never does, the failure shows the
// Rollout's last status and its AnalysisRuns' measurements, so a CI log explains itself.
func (b *rolloutBed) waitFor(t *testing.T, name string, within time.Duration, what string, done func(*v1alpha1.Rollout) bool) *v1alpha1.Rollout {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ro := b.get(t, name)
		if done(ro) {
			return ro
		}
		if time.Now().After(deadline) {
			t.Fatalf("Rollout %s never reached %s within %s\n%s", name, what, within, b.explain(t, ro))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// explain prints a Rollout's status and every AnalysisRun it owns with its measurements.
func (b *rolloutBed) explain(t *testing.T, ro *v1alpha1.Rollout) string {
	t.Helper()
	var sb strings.Builder
	st := ro.Status
	fmt.Fprintf(&sb, "status: phase=%s step=%d state=%s next=%v stable=%s canary=%s\nmessage: %s\nabortReason: %s\n",
		st.Phase, st.CurrentStepIndex, st.CurrentStepState, st.NextStepIndex, st.StableRevision, st.CanaryRevision, st.Message, st.AbortReason)
	var runs v1alpha1.AnalysisRunList
	if err := b.Client.List(context.Background(), &runs, client.InNamespace(ro.Namespace)); err != nil {
		fmt.Fprintf(&sb, "listing AnalysisRuns: %v\n", err)
		return sb.String()
	}
	for _, r := range runs.Items {
		if !metav1.IsControlledBy(&r, ro) {
			continue
		}
		fmt.Fprintf(&sb, "AnalysisRun %s: %s %s\n", r.Name, r.Status.Phase, r.Status.Message)
		for _, m := range r.Status.MetricResults {
			fmt.Fprintf(&sb, "  metric %s: %s %s\n", m.Name, m.Phase, m.Message)
			for _, x := range m.Measurements {
				fmt.Fprintf(&sb, "    %s at %v: %q %s\n", x.Phase, x.StartedAt, x.Value, x.Message)
			}
		}
	}
	return sb.String()
}

// setTemplate changes the Deployment's pod template: a new revision.
func (b *rolloutBed) setTemplate(t *testing.T, name, image, errorRate string) {
	t.Helper()
	require.NoError(t, fixtures.SetTemplate(context.Background(), b.Client, b.ns, name, image, errorRate))
}

// pods counts the ready pods of each revision of the Deployment.
func (b *rolloutBed) pods(t *testing.T, name string) map[string]int {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, b.Client.List(context.Background(), &list, client.InNamespace(b.ns), client.MatchingLabels{"app": name}))
	out := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && testbed.PodReady(&p) {
			out[p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]]++
		}
	}
	return out
}

// waitPods waits until the ready pods per revision are exactly want.
func (b *rolloutBed) waitPods(t *testing.T, name string, want map[string]int) {
	t.Helper()
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, b.pods(t, name)) }, time.Minute, 100*time.Millisecond,
		"pods of %s: want %v", name, want)
}

func (b *rolloutBed) selector(t *testing.T, svc string) map[string]string {
	t.Helper()
	var s corev1.Service
	require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: svc}, &s))
	return s.Spec.Selector
}

// routeWeights returns the HTTPRoute's weights by backend Service, rule by rule.
func (b *rolloutBed) routeWeights(t *testing.T, name string) []map[string]int32 {
	t.Helper()
	var r gatewayv1.HTTPRoute
	require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: name}, &r))
	var out []map[string]int32
	for _, rule := range r.Spec.Rules {
		w := map[string]int32{}
		for _, ref := range rule.BackendRefs {
			w[string(ref.Name)] = ptr.Deref(ref.Weight, 1)
		}
		out = append(out, w)
	}
	return out
}

func (b *rolloutBed) absent(t *testing.T, obj client.Object, name string) bool {
	t.Helper()
	err := b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: name}, obj)
	return apierrors.IsNotFound(err)
}

// kubectl runs kubectl against the bed and returns its output.
func (b *rolloutBed) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(b.Kubectl, append([]string{"--kubeconfig", b.Kubeconfig, "-n", b.ns}, args...)...).CombinedOutput()
	require.NoError(t, err, "kubectl %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// metrics is the controller's /metrics page.
func (b *rolloutBed) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(b.pg.MetricsURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// patchStatus is a human command: the documented status patch.
func (b *rolloutBed) patchStatus(t *testing.T, name string, status map[string]any) {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"status": status})
	require.NoError(t, err)
	b.kubectl(t, "patch", "rollout", name, "--subresource=status", "--type=merge", "-p", string(raw))
}

func stableAndCanary(ro *v1alpha1.Rollout) (string, string) {
	return ro.Status.StableRevision, ro.Status.CanaryRevision
}

func withHash(sel map[string]string, hash string) map[string]string {
	out := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: hash}
	for k, v := range sel {
		out[k] = v
	}
	return out
}

func blueGreenSteps(analysis bool) []v1alpha1.RolloutStep {
	var a *v1alpha1.RolloutAnalysis
	if analysis {
		a = &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}
	}
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("0%")},
		{Traffic: ptr.To("10%"), Analysis: a},
		{Traffic: ptr.To("100%"), Analysis: a},
	}
}

// TestRollouts runs the release scenarios of seeds 000-002 on one cluster, one after the
// other, asserting pods, selectors and weights at every step.
func TestRollouts(t *testing.T) {
	runRolloutScenarios(t, startRolloutBed(t, trafficsim.Config{Entries: simEntries}), func(string) bool { return true })
}

// runRolloutScenarios runs the scenarios want selects, in order, on one bed.
func runRolloutScenarios(t *testing.T, b *rolloutBed, want func(name string) bool) {
	run := func(name string, f func(t *testing.T)) {
		if want(name) {
			t.Run(name, f)
		}
	}

	run("blue-green healthy completes", func(t *testing.T) {
		const app = "bg-ok"
		orig := b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{
			Steps: blueGreenSteps(true), TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
		}})
		origSelector := b.selector(t, app)
		origRoute := b.routeWeights(t, app)
		blue := b.get(t, app).Status.StableRevision
		b.waitPods(t, app, map[string]int{blue: 5})

		b.setTemplate(t, app, "echoserver:green", "0")
		ro := b.waitStep(t, app, 2, v1alpha1.StepMetricsAnalysis, time.Minute)
		_, green := stableAndCanary(ro)
		require.NotEmpty(t, green)
		assert.Equal(t, map[string]int{blue: 5, green: 5}, b.pods(t, app), "step 2: both versions at full size")
		assert.Equal(t, withHash(origSelector, blue), b.selector(t, app), "the stable Service is pinned to blue")
		assert.Equal(t, withHash(origSelector, green), b.selector(t, app+"-canary"), "the canary Service selects green")
		assert.Equal(t, []map[string]int32{{app: 90, app + "-canary": 10}}, b.routeWeights(t, app), "step 2: 10% to green")

		b.waitStep(t, app, 3, v1alpha1.StepMetricsAnalysis, time.Minute)
		assert.Equal(t, map[string]int{blue: 5, green: 5}, b.pods(t, app), "step 3: both versions at full size")
		assert.Equal(t, []map[string]int32{{app: 0, app + "-canary": 100}}, b.routeWeights(t, app), "step 3: all traffic to green")

		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
		require.Eventually(t, func() bool { return b.get(t, app).Status.StableRevision == green }, time.Minute, 100*time.Millisecond)
		b.waitPods(t, app, map[string]int{green: 5})
		assert.Equal(t, origSelector, b.selector(t, app), "the Service's selector is restored")
		assert.Equal(t, origRoute, b.routeWeights(t, app), "the HTTPRoute is restored")
		assert.True(t, b.absent(t, &corev1.Service{}, app+"-canary"), "the generated Service is gone")
		var d appsv1.Deployment
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(orig), &d))
		assert.Equal(t, orig.Spec.Strategy, d.Spec.Strategy, "strategy restored")
		assert.Equal(t, orig.Spec.MinReadySeconds, d.Spec.MinReadySeconds)
		assert.Equal(t, orig.Spec.ProgressDeadlineSeconds, d.Spec.ProgressDeadlineSeconds)
		assert.True(t, d.Spec.Paused, "the Deployment waits for the next release")
		rep := b.get(t, app).Status.Report
		require.NotNil(t, rep, "the release leaves a report")
		assert.Equal(t, v1alpha1.RolloutPhaseCompleted, rep.Outcome)
		assert.Equal(t, green, rep.Revision)
		require.Len(t, rep.Steps, 3)
		for i, st := range rep.Steps {
			assert.Equal(t, int32(i+1), st.Index)
			assert.Equal(t, "Successful", st.Verdict, "step %d", i+1)
			assert.NotNil(t, st.EndedAt)
		}
		assert.Equal(t, v1alpha1.DecidedByAnalysis, rep.Steps[1].DecidedBy)
		assert.Regexp(t, `^error-rate=\[0\] \(Successful\)$`, rep.Steps[1].Measurements[0])
		assert.Contains(t, b.metrics(t), `promgate_rollout_releases_total{decided_by="analysis",namespace="default",outcome="Completed",rollout="bg-ok"} 1`,
			"the report is exported as a metric")
		out := b.kubectl(t, "get", "rollout", app)
		assert.Regexp(t, `NAME\s+STATUS\s+STEP\s+STEP_STATE\s+MESSAGE\s+AGE`, out)
		assert.Regexp(t, app+`\s+Completed\s+3\s+Completed\s+Rollout progressing has been completed`, out)
	})

	run("blue-green with a failing green aborts to step 1", func(t *testing.T) {
		const app = "bg-bad"
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{
			Steps: blueGreenSteps(true), TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
		}})
		origSelector := b.selector(t, app)
		blue := b.get(t, app).Status.StableRevision

		b.setTemplate(t, app, "echoserver:green", "0.2")
		b.waitStep(t, app, 2, v1alpha1.StepMetricsAnalysis, time.Minute)
		ro := b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
		green := ro.Status.CanaryRevision
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex, "aborted releases go back to step 1")
		assert.Contains(t, ro.Status.Message, "step 2")
		assert.Contains(t, ro.Status.Message, `"error-rate"`, "the message names the metric")
		assert.Regexp(t, `0\.[12]\d*`, ro.Status.AbortReason, "the reason carries the measured value")
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app), "no traffic to green")
		rep := ro.Status.Report
		require.NotNil(t, rep)
		assert.Equal(t, v1alpha1.RolloutPhaseAborted, rep.Outcome)
		assert.Equal(t, v1alpha1.DecidedByAnalysis, rep.DecidedBy)
		require.Len(t, rep.Steps, 2)
		assert.Equal(t, "Failed", rep.Steps[1].Verdict)
		assert.Regexp(t, `^error-rate=\[0\.[12]\d*\] \(Failed\)$`, rep.Steps[1].Measurements[0])
		assert.Equal(t, withHash(origSelector, blue), b.selector(t, app), "the stable Service selects blue only")
		assert.Equal(t, map[string]int{blue: 5, green: 5}, b.pods(t, app), "green is kept for diagnosis")
		assert.Eventually(t, func() bool {
			split := b.sim.Snapshot().Entry(trafficsim.KindHTTPRoute, app).All
			return split[trafficsim.Backend{Service: app, Revision: blue}] == 1
		}, 5*time.Second, 100*time.Millisecond, "the simulator sends everything to blue")
	})

	run("background analysis aborts across steps", func(t *testing.T) {
		const app = "background"
		b.app(t, app)
		b.httpRoute(t, app)
		b.create(t, &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps: []v1alpha1.RolloutStep{
						{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Pause: &v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: 2 * time.Second}}},
						{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
						{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
					},
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
				Analysis: &v1alpha1.BackgroundAnalysis{RolloutAnalysis: v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}},
			},
		})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
		b.setTemplate(t, app, "echoserver:green", "0.3")
		// Step 1's pause (2 s) ends before the run's first measurement (5 s): the run
		// started at step 1 decides at step 2.
		ro := b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
		run := ro.Status.AnalysisRuns.Background
		require.NotEmpty(t, run, "the background run measures across the step")
		ro = b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Contains(t, ro.Status.AbortReason, "background analysis "+run)
		assert.Contains(t, ro.Status.AbortReason, `"error-rate"`)
		assert.Contains(t, ro.Status.Message, "aborted at step 2")
		require.NotNil(t, ro.Status.Report)
		require.Len(t, ro.Status.Report.Steps, 2, "the release crossed step 1")
		assert.Equal(t, "Successful", ro.Status.Report.Steps[0].Verdict, "step 1 passed on its pause")
		assert.Equal(t, "Failed", ro.Status.Report.Steps[1].Verdict, "step 2 ended on the background verdict")
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app))
	})

	run("canary batches with approvals", func(t *testing.T) {
		const app = "batches"
		b.app(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{
			{Replicas: ptr.To(intstr.FromInt32(1)), Pause: &v1alpha1.RolloutPause{}},
			{Replicas: ptr.To(intstr.FromString("50%")), Pause: &v1alpha1.RolloutPause{}},
			{Replicas: ptr.To(intstr.FromString("100%"))},
		}}})
		blue := b.get(t, app).Status.StableRevision
		b.setTemplate(t, app, "nginx:1.27", "0")

		ro := b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)
		green := ro.Status.CanaryRevision
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase)
		assert.Contains(t, ro.Status.Message, "you need manually confirm")
		b.waitPods(t, app, map[string]int{blue: 5, green: 1})

		b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
		b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
		b.waitPods(t, app, map[string]int{blue: 5, green: 3})

		b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
		b.waitPods(t, app, map[string]int{green: 5})
	})

	run("no traffic is inconclusive and waits for a human", func(t *testing.T) {
		const app = "quiet"
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Analysis: &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
			},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
		}})
		b.setTemplate(t, app, "echoserver:green", "0")
		ro := b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhasePaused)
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex)
		assert.Equal(t, v1alpha1.StepPaused, ro.Status.CurrentStepState)
		assert.Contains(t, ro.Status.Message, "inconclusive")
		assert.Equal(t, []map[string]int32{{app: 80, app + "-canary": 20}}, b.routeWeights(t, app), "paused with the step's traffic")
		time.Sleep(2 * time.Second)
		assert.Equal(t, v1alpha1.RolloutPhasePaused, b.get(t, app).Status.Phase, "no data never promotes")

		b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
	})

	for _, variant := range []string{"nginx", "gw"} {
		run("canary weights and header routing via "+variant, func(t *testing.T) {
			app := "canary-" + variant
			b.app(t, app)
			routing := v1alpha1.TrafficRouting{Service: app}
			if variant == "nginx" {
				b.ingress(t, app)
				routing.Ingress = &v1alpha1.IngressTrafficRouting{Name: app}
			} else {
				b.httpRoute(t, app)
				routing.Gateway = &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}
			}
			header := []v1alpha1.HTTPRouteMatch{{Headers: []v1alpha1.HeaderMatch{{Name: "X-Canary", Value: "always"}}}}
			b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
				Steps: []v1alpha1.RolloutStep{
					{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Matches: header, Pause: &v1alpha1.RolloutPause{}},
					{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
					{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
				},
				TrafficRoutings: []v1alpha1.TrafficRouting{routing},
			}})
			blue := b.get(t, app).Status.StableRevision
			b.setTemplate(t, app, "echoserver:green", "0")

			ro := b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)
			green := ro.Status.CanaryRevision
			b.waitPods(t, app, map[string]int{blue: 5, green: 1})
			canaryShare := func() (plain, header float64) {
				kind := trafficsim.KindHTTPRoute
				if variant == "nginx" {
					kind = trafficsim.KindIngress
				}
				var split trafficsim.Split
				require.Eventually(t, func() bool {
					split = b.sim.Snapshot().Entry(kind, app)
					return split.Plain != nil
				}, 10*time.Second, 100*time.Millisecond)
				g := trafficsim.Backend{Service: app + "-canary", Revision: green}
				return split.Plain[g], split.Header[g]
			}
			if variant == "nginx" {
				var ing networkingv1.Ingress
				require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: app + "-canary"}, &ing))
				assert.Equal(t, "20", ing.Annotations["nginx.ingress.kubernetes.io/canary-weight"])
				assert.Equal(t, "X-Canary", ing.Annotations["nginx.ingress.kubernetes.io/canary-by-header"])
				assert.Equal(t, "always", ing.Annotations["nginx.ingress.kubernetes.io/canary-by-header-value"])
			}
			require.Eventually(t, func() bool {
				plain, hdr := canaryShare()
				return plain > 0.19 && plain < 0.21 && hdr > 0.99
			}, 10*time.Second, 200*time.Millisecond, "step 1: 20%% of plain requests and every X-Canary request go to green")

			b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
			b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
			b.waitPods(t, app, map[string]int{blue: 5, green: 3})
			require.Eventually(t, func() bool {
				plain, _ := canaryShare()
				return plain > 0.49 && plain < 0.51
			}, 10*time.Second, 200*time.Millisecond, "step 2: half the traffic to green")

			b.patchStatus(t, app, map[string]any{"currentStepState": "StepReady"})
			b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
			b.waitPods(t, app, map[string]int{green: 5})
			if variant == "nginx" {
				require.Eventually(t, func() bool { return b.absent(t, &networkingv1.Ingress{}, app+"-canary") }, 30*time.Second, 100*time.Millisecond)
			}
		})
	}

	run("human commands: jump, restart on a new template, abort, retry, promote-full", func(t *testing.T) {
		const app = "commands"
		b.app(t, app)
		b.httpRoute(t, app)
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				MinReplicas:    ptr.To[int32](5), MaxReplicas: 10,
			},
		}
		b.create(t, hpa)
		b.rollout(t, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
			Steps: []v1alpha1.RolloutStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Pause: &v1alpha1.RolloutPause{}},
				{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
				{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%"), Pause: &v1alpha1.RolloutPause{}},
			},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
		}})
		blue := b.get(t, app).Status.StableRevision
		hpaTarget := func() string {
			var h autoscalingv2.HorizontalPodAutoscaler
			require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(hpa), &h))
			return h.Spec.ScaleTargetRef.Name
		}
		weights := func(canary int32) []map[string]int32 {
			return []map[string]int32{{app: 100 - canary, app + "-canary": canary}}
		}

		b.setTemplate(t, app, "echoserver:green", "0")
		green := b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute).Status.CanaryRevision
		b.waitPods(t, app, map[string]int{blue: 5, green: 1})
		assert.NotEqual(t, app, hpaTarget(), "the HPA is disabled during the release")

		b.patchStatus(t, app, map[string]any{"nextStepIndex": 3})
		b.waitStep(t, app, 3, v1alpha1.StepPaused, time.Minute)
		b.waitPods(t, app, map[string]int{blue: 5, green: 5})
		assert.Equal(t, weights(100), b.routeWeights(t, app), "jumped forward to step 3")
		assert.Zero(t, b.get(t, app).Status.NextStepIndex, "the controller clears the command")

		b.patchStatus(t, app, map[string]any{"nextStepIndex": 1})
		b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)
		b.waitPods(t, app, map[string]int{blue: 5, green: 1})
		assert.Equal(t, weights(20), b.routeWeights(t, app), "jumped back to step 1")

		b.setTemplate(t, app, "echoserver:purple", "0")
		var purple string
		require.Eventually(t, func() bool {
			ro := b.get(t, app)
			purple = ro.Status.CanaryRevision
			return purple != green && purple != "" && ro.Status.CurrentStepIndex == 1 && ro.Status.CurrentStepState == v1alpha1.StepPaused
		}, time.Minute, 50*time.Millisecond, "a new template restarts the release from step 1")
		b.waitPods(t, app, map[string]int{blue: 5, purple: 1})

		b.patchStatus(t, app, map[string]any{"abort": true})
		ro := b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Contains(t, ro.Status.Message, "aborted by a human")
		assert.Equal(t, weights(0), b.routeWeights(t, app), "abort: no traffic to the new version")
		assert.False(t, ro.Status.Abort, "the controller clears the command")

		b.patchStatus(t, app, map[string]any{"nextStepIndex": 1})
		ro = b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhasePaused)
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex, "retried from step 1")
		assert.Empty(t, ro.Status.AbortReason)
		assert.Equal(t, weights(20), b.routeWeights(t, app))

		b.patchStatus(t, app, map[string]any{"promoteFull": true})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
		b.waitPods(t, app, map[string]int{purple: 5})
		require.Eventually(t, func() bool { return hpaTarget() == app }, 30*time.Second, 100*time.Millisecond, "the HPA scales the Deployment again")
	})

	run("reverting the Deployment cancels the release", func(t *testing.T) {
		const app = "revert"
		b.app(t, app)
		b.httpRoute(t, app)
		b.rollout(t, app, v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{
			Steps:           []v1alpha1.RolloutStep{{Traffic: ptr.To("0%")}, {Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}}, {Traffic: ptr.To("100%")}},
			TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
		}})
		origSelector, origRoute := b.selector(t, app), b.routeWeights(t, app)
		blue := b.get(t, app).Status.StableRevision
		b.setTemplate(t, app, "echoserver:green", "0")
		ro := b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
		green := ro.Status.CanaryRevision
		assert.Equal(t, map[string]int{blue: 5, green: 5}, b.pods(t, app))

		b.setTemplate(t, app, "echoserver:blue", "0")
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCancelled)
		b.waitPods(t, app, map[string]int{blue: 5})
		require.Eventually(t, func() bool {
			ro := b.get(t, app)
			return ro.Status.CanaryRevision == "" && ro.Status.Message == "Rollout progressing has been cancelled"
		}, time.Minute, 100*time.Millisecond)
		assert.Equal(t, origSelector, b.selector(t, app))
		assert.Equal(t, origRoute, b.routeWeights(t, app))
		assert.True(t, b.absent(t, &corev1.Service{}, app+"-canary"))
	})

	for _, how := range []string{"disable", "delete"} {
		run(how+" mid-release restores everything", func(t *testing.T) {
			app := how + "-mid"
			orig := b.app(t, app)
			b.httpRoute(t, app)
			b.rollout(t, app, v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{
				Steps:           []v1alpha1.RolloutStep{{Traffic: ptr.To("0%")}, {Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}}, {Traffic: ptr.To("100%")}},
				TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
			}})
			origSelector, origRoute := b.selector(t, app), b.routeWeights(t, app)
			b.setTemplate(t, app, "echoserver:green", "0")
			ro := b.waitStep(t, app, 2, v1alpha1.StepPaused, time.Minute)
			green := ro.Status.CanaryRevision

			if how == "disable" {
				ro.Spec.Disabled = true
				require.NoError(t, b.Client.Update(context.Background(), ro))
				b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseDisabled)
			} else {
				require.NoError(t, b.Client.Delete(context.Background(), ro))
				require.Eventually(t, func() bool { return b.absent(t, &v1alpha1.Rollout{}, app) }, time.Minute, 100*time.Millisecond)
			}
			assert.Equal(t, origSelector, b.selector(t, app))
			assert.Equal(t, origRoute, b.routeWeights(t, app))
			require.Eventually(t, func() bool { return b.absent(t, &corev1.Service{}, app+"-canary") }, 30*time.Second, 100*time.Millisecond)
			var d appsv1.Deployment
			require.NoError(t, b.Client.Get(context.Background(), client.ObjectKeyFromObject(orig), &d))
			assert.Equal(t, orig.Spec.Strategy, d.Spec.Strategy)
			assert.Equal(t, orig.Spec.MinReadySeconds, d.Spec.MinReadySeconds)
			assert.False(t, d.Spec.Paused)
			assert.NotContains(t, d.Annotations, "promgate.io/original-deployment")
			// Left alone, the Deployment finishes the new template as a plain Deployment.
			b.waitPods(t, app, map[string]int{green: 5})
		})
	}

	run("bad input is a condition naming the field", func(t *testing.T) {
		b.app(t, "lonely")
		// A Deployment some Rollout already releases: a second Rollout on it is refused.
		b.app(t, "taken")
		b.rollout(t, "taken", v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{{}}}})
		on := func(deployment string, st v1alpha1.ReleaseStrategy) v1alpha1.RolloutSpec {
			return v1alpha1.RolloutSpec{WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: deployment},
				Strategy: v1alpha1.RolloutStrategy{Canary: &st}}
		}
		for name, tc := range map[string]struct {
			spec           v1alpha1.RolloutSpec
			field, message string
		}{
			"missing-deployment": {on("nope", v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{{}}}),
				"spec.workloadRef.name", `Deployment "nope" not found`},
			"missing-service": {on("lonely", v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{{Traffic: ptr.To("100%")}},
				TrafficRoutings: []v1alpha1.TrafficRouting{{Service: "nope"}}}),
				"spec.strategy.canary.trafficRoutings[0].service", `Service "nope" not found`},
			"second-rollout": {on("taken", v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{{}}}),
				"spec.workloadRef.name", `Deployment "taken" is already released by Rollout "taken"`},
			"percent-over-100": {on("lonely", v1alpha1.ReleaseStrategy{Steps: []v1alpha1.RolloutStep{{Replicas: ptr.To(intstr.FromString("150%"))}}}),
				"spec.strategy.canary.steps[0].replicas", `"150%"`},
		} {
			b.create(t, &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "bad-" + name, Namespace: b.ns}, Spec: tc.spec})
			var cond *metav1.Condition
			require.Eventually(t, func() bool {
				cond = apimeta.FindStatusCondition(b.get(t, "bad-"+name).Status.Conditions, "Valid")
				return cond != nil
			}, 30*time.Second, 100*time.Millisecond, name)
			assert.Equal(t, metav1.ConditionFalse, cond.Status, name)
			assert.Contains(t, cond.Message, tc.field+":", name)
			assert.Contains(t, cond.Message, tc.message, name)
		}
		var d appsv1.Deployment
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: "lonely"}, &d))
		assert.NotContains(t, d.Annotations, "promgate.io/rollout", "an invalid Rollout changes nothing")
		require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: b.ns, Name: "taken"}, &d))
		assert.Equal(t, "taken", d.Annotations["promgate.io/rollout"], "the first Rollout keeps its Deployment")
	})

	if t.Failed() {
		fmt.Println(b.kubectl(t, "get", "rollouts,rs,svc,deploy,analysisruns"))
		fmt.Println(b.kubectl(t, "get", "events", "--sort-by=.lastTimestamp"))
	}
}
