package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

const (
	ns         = "default"
	alertToken = "night-shift-token"
	// alertName is the on-call alert both Rollouts abort on.
	alertName = "CanaryErrorRatio"
	// zone is the release window's time zone, as a team in Paris would write it.
	zone = "Europe/Paris"
	// opensIn is how far after the Rollouts' creation the window opens: enough for them to
	// adopt their Deployments and hold the new revisions, little enough to wait for.
	opensIn = 15 * time.Second
	// windowOpen is how long the window stays open; both releases end well inside it.
	windowOpen = 4 * time.Minute
	// verdictWithin bounds the wait for both outcomes once the window is open.
	verdictWithin = 3 * time.Minute
	// rps is the simulated traffic each app receives.
	rps = 50
)

// canaryErrorRatioRule is the team's on-call SLO: more than 5% of the requests a canary
// Service answers fail. The entry label (the HTTPRoute) tells the Rollouts apart.
const canaryErrorRatioRule = `groups:
- name: promgate-demo
  rules:
  - alert: ` + alertName + `
    expr: |
      sum by (entry) (rate(promgate_sim_requests_total{service=~".+-canary",code="500"}[10s]))
        / sum by (entry) (rate(promgate_sim_requests_total{service=~".+-canary"}[10s])) > 0.05
    for: 2s
    labels: {severity: page}
`

// app is one application of the demo and what its green revision does.
type app struct {
	name string
	// errorRate is the share of requests the green revision answers with a 500.
	errorRate string
	// outcome is how its release must end.
	outcome v1alpha1.RolloutPhase
}

var apps = []app{
	{name: "checkout", errorRate: "0", outcome: v1alpha1.RolloutPhaseCompleted},
	{name: "payments", errorRate: "0.3", outcome: v1alpha1.RolloutPhaseAborted},
}

// bed is the test bed of the demo: cluster, traffic, Prometheus, Alertmanager, promgate.
type bed struct {
	*testbed.Cluster
	sim  *trafficsim.Simulator
	prom *testbed.Prometheus
	am   *testbed.Alertmanager
}

// TestDemo runs the demo; see the package documentation.
func TestDemo(t *testing.T) {
	out := newPrinter(os.Stdout)
	out.title("promgate demo: two unattended releases in a compressed night window")
	out.text(`Two apps, checkout and payments, run 5 "blue" pods behind a Service and a Gateway API
HTTPRoute, with 50 simulated requests per second each. Their Rollouts release canary
steps 10% -> 50% -> 100%; each step is gated by the error-rate analysis, then paused
until the release window promotes it; abortOn names the on-call alert for the route.
A new "green" revision of both is pushed before the window opens. checkout's green is
healthy; payments' green answers 30% errors: its step analysis is a coarse gate (fewer
than half the requests fail) that lets it through, and the on-call alert (more than 5%
fail) is what must stop it.
`)

	b := startBed(t, out)
	for _, a := range apps {
		b.createApp(t, a.name)
	}
	require.NoError(t, b.Client.Create(context.Background(), errorRateTemplate()))
	out.say("bed", "apps checkout and payments: Deployment of 5 blue pods, Service, HTTPRoute; AnalysisTemplate error-rate")

	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	// A whole second: cron fires on whole seconds.
	opens := time.Now().Add(opensIn).Truncate(time.Second).In(loc)
	window := &v1alpha1.ReleaseWindow{
		Schedule: fmt.Sprintf("%d %d %d * * *", opens.Second(), opens.Minute(), opens.Hour()),
		Duration: metav1.Duration{Duration: windowOpen}, TimeZone: zone,
	}
	out.say("window", "release window %q (seconds field first) in %s for %s: opens at %s, in %s",
		window.Schedule, zone, windowOpen, opens.Format("15:04:05 MST"), time.Until(opens).Round(time.Second))
	for _, a := range apps {
		require.NoError(t, b.Client.Create(context.Background(), rolloutFor(a.name, window)))
	}
	blue := map[string]string{}
	for _, a := range apps {
		ro := b.waitPhase(t, a.name, time.Minute, v1alpha1.RolloutPhaseHealthy)
		blue[a.name] = ro.Status.StableRevision
		out.say(a.name, "Rollout %s adopted Deployment %s: blue is revision %s", a.name, a.name, ro.Status.StableRevision)
	}

	w := newWatcher(b, out, opens)
	for _, a := range apps {
		w.add(a, blue[a.name])
	}
	w.poll()
	for _, a := range apps {
		b.setTemplate(t, a.name, "echoserver:green", a.errorRate)
		out.say(a.name, "pushed a new revision, green (image echoserver:green, answers %s errors)", percent(a.errorRate))
	}

	outcomeErr := w.run(opens.Add(verdictWithin))
	out.section("kubectl get rollout")
	out.text(b.kubectl(t, "get", "rollout"))
	out.section("release reports")
	reports := map[string]*v1alpha1.ReleaseReport{}
	for _, a := range apps {
		ro := b.get(t, a.name)
		reports[a.name] = ro.Status.Report
		out.report(a.name, ro.Status.Report)
	}
	require.NoError(t, outcomeErr)

	healthy, bad := w.app("checkout"), w.app("payments")
	for _, a := range []*appWatch{healthy, bad} {
		assert.True(t, a.heldSeen, "%s: the new revision waited for the window", a.name)
		assert.False(t, a.greenBeforeOpen, "%s: no green pod before the window opened", a.name)
		if rep := reports[a.name]; assert.NotNil(t, rep, "%s: the release left a report", a.name) && assert.NotEmpty(t, rep.Steps) {
			assert.False(t, rep.Steps[0].StartedAt.Time.Before(opens), "%s: step 1 started once the window opened", a.name)
		}
	}

	rep := reports["checkout"]
	require.NotNil(t, rep)
	assert.Equal(t, v1alpha1.RolloutPhaseCompleted, rep.Outcome)
	assert.Equal(t, healthy.green, rep.Revision)
	assert.NotEqual(t, v1alpha1.DecidedByHuman, rep.DecidedBy)
	require.Len(t, rep.Steps, 3)
	for _, st := range rep.Steps {
		assert.Equal(t, "Successful", st.Verdict, "checkout step %d", st.Index)
		assert.NotEqual(t, v1alpha1.DecidedByHuman, st.DecidedBy, "checkout step %d: nobody touched it", st.Index)
	}
	assert.Equal(t, v1alpha1.DecidedByWindow, rep.Steps[0].DecidedBy, "step 1's pause ended by the window")
	assert.Equal(t, v1alpha1.DecidedByWindow, rep.Steps[1].DecidedBy, "step 2's pause ended by the window")

	rep = reports["payments"]
	require.NotNil(t, rep)
	assert.Equal(t, v1alpha1.RolloutPhaseAborted, rep.Outcome)
	assert.Equal(t, v1alpha1.DecidedByAlert, rep.DecidedBy, "the alert, not the analysis, aborted payments")
	ro := b.get(t, "payments")
	assert.Contains(t, ro.Status.AbortReason, alertName)
	assert.Contains(t, ro.Status.AbortReason, "(webhook)", "delivered by Alertmanager's webhook")
	assert.Equal(t, map[string]int32{"payments": 100, "payments-canary": 0}, b.routeWeights(t, "payments"), "HTTPRoute: no traffic to the canary")
	if t.Failed() {
		return
	}
	out.section("result")
	out.text(fmt.Sprintf(`checkout: green %s released in the window with no human: the window ended both pauses.
payments: green %s aborted by the %s alert (Prometheus rule -> Alertmanager ->
          promgate's webhook); its HTTPRoute sends it nothing, blue %s serves every request.
The demo took %s from the start of the test bed.`, healthy.green, bad.green, alertName, bad.blue, out.since().Round(time.Second)))
}

// startBed starts everything the demo runs on; all of it stops when the test ends.
func startBed(t *testing.T, out *printer) *bed {
	out.say("bed", "starting the simulated cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
	c := testbed.StartCluster(t)
	out.say("bed", "cluster ready: node %s (kwok) runs the pods the Deployment controller creates", c.NodeName)

	entries := make([]trafficsim.Entry, 0, len(apps))
	for _, a := range apps {
		entries = append(entries, trafficsim.Entry{Kind: trafficsim.KindHTTPRoute, Name: a.name, RPS: rps})
	}
	sim, err := trafficsim.New(trafficsim.Config{Client: c.Client, Namespace: ns, Entries: entries})
	require.NoError(t, err)
	// The simulator logs read failures and object problems; they belong in the timeline.
	logger := funcr.New(func(_, args string) { out.say("simulator", "%s", args) }, funcr.Options{})
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), logger))
	t.Cleanup(cancel)
	go func() { _ = sim.Run(ctx) }()
	out.say("bed", "traffic simulator: %d requests/s to each of HTTPRoute/checkout and HTTPRoute/payments", rps)

	port, err := testbed.FreePort()
	require.NoError(t, err)
	webhook := "127.0.0.1:" + strconv.Itoa(port)
	am := testbed.StartAlertmanager(t, testbed.AlertmanagerOptions{
		WebhookURL: "http://" + webhook + "/alertmanager",
		HTTPConfig: map[string]any{"authorization": map[string]any{"credentials": alertToken}},
	})
	out.say("bed", "Alertmanager %s: sends every alert to promgate's webhook http://%s/alertmanager with a bearer token", am.URL, webhook)
	prom := testbed.StartPrometheus(t, testbed.PrometheusOptions{
		Targets:       []string{testbed.Serve(t, sim.Handler())},
		Rules:         map[string]string{"demo.yaml": canaryErrorRatioRule},
		Alertmanagers: []string{am.Address},
	})
	out.say("bed", "Prometheus %s: scrapes the simulator every second; rule %s fires when a canary fails more than 5%% of its requests for 2s", prom.URL, alertName)

	require.NoError(t, c.Client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "alert-token", Namespace: ns},
		StringData: map[string]string{"token": alertToken},
	}))
	out.say("bed", "building and starting the promgate controller")
	pg := testbed.StartPromgate(t, c.ControlPlane, "--prometheus-address="+prom.URL,
		"--alert-webhook-bind-address="+webhook, "--alert-webhook-token-secret="+ns+"/alert-token")
	out.say("bed", "promgate controller running (pid %d, its own process, with only its RBAC role)", pg.Pid())
	return &bed{Cluster: c, sim: sim, prom: prom, am: am}
}

// errorRateTemplate is each step's analysis: the canary revision's error ratio, measured
// three times. Its bar is deliberately coarse (fewer than half the requests fail): the
// step gate stops a canary that does not work at all, and the team's SLO lives in the
// alerting rule, which promgate obeys through abortOn.
func errorRateTemplate() *v1alpha1.AnalysisTemplate {
	return &v1alpha1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "error-rate", Namespace: ns},
		Spec: v1alpha1.AnalysisTemplateSpec{
			Args: []v1alpha1.Argument{{Name: "canary-hash"}},
			Metrics: []v1alpha1.Metric{{
				Name: "error-rate",
				// Traffic reaches the new version when the step starts; rate() needs a few
				// scrapes of it before there is data. On a loaded 2-core CI machine the first
				// tick can still come too early, so one no-data measurement is tolerated; a
				// version that never gets traffic is still Inconclusive at the second.
				InitialDelay:      "5s",
				Interval:          "2s",
				Count:             ptr.To[int32](3),
				InconclusiveLimit: ptr.To[int32](1),
				SuccessCondition:  "result[0] < 0.5",
				Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusMetric{
					Query: `sum(rate(promgate_sim_requests_total{revision="{{args.canary-hash}}",code="500"}[5s])) / sum(rate(promgate_sim_requests_total{revision="{{args.canary-hash}}"}[5s]))`,
				}},
			}},
		},
	}
}

// rolloutFor is the release policy both apps share.
func rolloutFor(name string, window *v1alpha1.ReleaseWindow) *v1alpha1.Rollout {
	analysis := &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}
	return &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.RolloutSpec{
			WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
				Steps: []v1alpha1.RolloutStep{
					{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("10%"), Analysis: analysis, Pause: &v1alpha1.RolloutPause{}},
					{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Analysis: analysis, Pause: &v1alpha1.RolloutPause{}},
					{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
				},
				TrafficRoutings: []v1alpha1.TrafficRouting{{Service: name, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: name}}},
			}},
			AbortOn: &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{
				Matchers: []string{`alertname="` + alertName + `"`, `entry="` + trafficsim.KindHTTPRoute + "/" + name + `"`},
			}}},
			ReleaseWindow: window,
		},
	}
}

// createApp creates a 5-replica Deployment of the blue revision, its Service and an
// HTTPRoute to it.
func (b *bed) createApp(t *testing.T, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	objs := []client.Object{
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](5),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{trafficsim.AnnotationErrorRate: "0"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "echoserver:blue"}}},
				},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		&gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gateway"}}},
				Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(name + ".example.com")},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[gatewayv1.PortNumber](80)},
				}}}}},
			},
		},
	}
	for _, o := range objs {
		require.NoError(t, b.Client.Create(context.Background(), o), "creating %T %s", o, name)
	}
}

func (b *bed) get(t *testing.T, name string) *v1alpha1.Rollout {
	t.Helper()
	var ro v1alpha1.Rollout
	require.NoError(t, b.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ro))
	return &ro
}

func (b *bed) waitPhase(t *testing.T, name string, within time.Duration, phase v1alpha1.RolloutPhase) *v1alpha1.Rollout {
	t.Helper()
	var ro *v1alpha1.Rollout
	require.Eventually(t, func() bool {
		ro = b.get(t, name)
		return ro.Status.Phase == phase
	}, within, 100*time.Millisecond, "Rollout %s never became %s", name, phase)
	return ro
}

// setTemplate pushes a new revision, as a deploy pipeline would.
func (b *bed) setTemplate(t *testing.T, name, image, errorRate string) {
	t.Helper()
	// The controller writes the Deployment too: a conflict is retried, as kubectl would.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var d appsv1.Deployment
		if err := b.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		d.Spec.Template.Annotations[trafficsim.AnnotationErrorRate] = errorRate
		return b.Client.Update(context.Background(), &d)
	}))
}

// routeWeights returns the weights of the HTTPRoute's first rule by backend Service.
func (b *bed) routeWeights(t *testing.T, name string) map[string]int32 {
	t.Helper()
	w, err := routeWeights(context.Background(), b.Client, name)
	require.NoError(t, err)
	return w
}

func routeWeights(ctx context.Context, c client.Client, name string) (map[string]int32, error) {
	var r gatewayv1.HTTPRoute
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
		return nil, err
	}
	w := map[string]int32{}
	if len(r.Spec.Rules) > 0 {
		for _, ref := range r.Spec.Rules[0].BackendRefs {
			w[string(ref.Name)] = ptr.Deref(ref.Weight, 1)
		}
	}
	return w, nil
}

// kubectl runs the bed's kubectl in the demo's namespace.
func (b *bed) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(b.Kubectl, append([]string{"--kubeconfig", b.Kubeconfig, "-n", ns}, args...)...).CombinedOutput()
	require.NoError(t, err, "kubectl %s: %s", strings.Join(args, " "), out)
	return strings.TrimRight(string(out), "\n")
}

// percent renders a fraction such as "0.3" as "30%".
func percent(fraction string) string {
	f, err := strconv.ParseFloat(fraction, 64)
	if err != nil {
		return fraction
	}
	return fmt.Sprintf("%.0f%%", f*100)
}
