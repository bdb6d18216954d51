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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
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
	// latency, when set, is the median latency of the green revision, blue's being
	// blueLatency; the app's steps are then judged against blue on latency.
	latency string
	// outcome is how its release must end.
	outcome v1alpha1.RolloutPhase
}

var apps = []app{
	{name: "checkout", errorRate: "0", outcome: v1alpha1.RolloutPhaseCompleted},
	{name: "payments", errorRate: "0.3", outcome: v1alpha1.RolloutPhaseAborted},
	{name: "search", errorRate: "0", latency: "200ms", outcome: v1alpha1.RolloutPhaseAborted},
}

// blueLatency is the median latency of search's blue revision, and latencySpread the
// spread of both its revisions' latencies (log-normal, so every window's figure is noisy).
const (
	blueLatency   = "100ms"
	latencySpread = "0.25"
)

// bed is the test bed of the demo: cluster, traffic, Prometheus, Alertmanager, promgate.
type bed struct {
	*fixtures.Bed
}

// TestDemo runs the demo; see the package documentation.
func TestDemo(t *testing.T) {
	out := newPrinter(os.Stdout)
	out.title("promgate demo: three unattended releases in a compressed night window")
	out.text(`Three apps, checkout, payments and search, run 5 "blue" pods behind a Service and a
Gateway API HTTPRoute, with 50 simulated requests per second each. Their Rollouts release
canary steps 10% -> 50% -> 100%; each step is gated by an analysis, then paused until the
release window promotes it; abortOn names the on-call alert for the route. A new "green"
revision of each is pushed before the window opens. checkout's green is healthy;
payments' green answers 30% errors: its step analysis is a coarse gate (fewer than half
the requests fail) that lets it through, and the on-call alert (more than 5% fail) is what
must stop it. search's green answers no errors but takes twice as long (a median of 200 ms
against blue's 100 ms, both noisy): no threshold is set anywhere, and the statistical
judge, comparing green's latency with blue's over the same minutes, must stop it.
`)

	b := startBed(t, out)
	for _, a := range apps {
		b.createApp(t, a)
	}
	// The step gate's bar is deliberately coarse (fewer than half the requests fail): it
	// stops a canary that does not work at all, and the team's SLO lives in the alerting
	// rule, which promgate obeys through abortOn.
	require.NoError(t, b.Client.Create(context.Background(), fixtures.ErrorRateTemplate(ns, "error-rate", "0.5")))
	require.NoError(t, b.Client.Create(context.Background(), fixtures.LatencyJudgeTemplate(ns, "canary-vs-stable", "stable-hash", nil)))
	out.say("bed", "apps checkout, payments and search: Deployment of 5 blue pods, Service, HTTPRoute; AnalysisTemplates error-rate and canary-vs-stable (a judge of green's mean latency against blue's, in 3 s windows over the last 30 s)")

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
		require.NoError(t, b.Client.Create(context.Background(), rolloutFor(a, window)))
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
		if a.latency != "" {
			b.setBehaviour(t, a.name, "echoserver:green", fixtures.Latency(a.latency, latencySpread))
			out.say(a.name, "pushed a new revision, green (image echoserver:green, no errors, a median latency of %s against blue's %s)", a.latency, blueLatency)
			continue
		}
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

	healthy, bad, slow := w.app("checkout"), w.app("payments"), w.app("search")
	for _, a := range []*appWatch{healthy, bad, slow} {
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

	rep = reports["search"]
	require.NotNil(t, rep)
	assert.Equal(t, v1alpha1.RolloutPhaseAborted, rep.Outcome)
	assert.Equal(t, v1alpha1.DecidedByAnalysis, rep.DecidedBy, "the judge, not an alert, aborted search")
	require.NotEmpty(t, rep.Steps)
	assert.Equal(t, "Failed", rep.Steps[0].Verdict, "at step 1")
	require.NotEmpty(t, rep.Steps[0].Measurements)
	assert.Regexp(t, `^latency=score 0 \(Fail\); latency-mean: High, shift \[0\.\d+, 0\.\d+\], medians canary 0\.\d+ baseline 0\.\d+, mean ratio \d`, rep.Steps[0].Measurements[0],
		"the report says why: the canary's latency is significantly higher")
	ro = b.get(t, "search")
	assert.Contains(t, ro.Status.AbortReason, `metric "latency" Failed`)
	assert.Contains(t, ro.Status.AbortReason, "score 0 is below the marginal threshold 75")
	assert.Equal(t, map[string]int32{"search": 100, "search-canary": 0}, b.routeWeights(t, "search"), "HTTPRoute: no traffic to the canary")
	if t.Failed() {
		return
	}
	out.section("result")
	out.text(fmt.Sprintf(`checkout: green %s released in the window with no human: the window ended both pauses.
payments: green %s aborted by the %s alert (Prometheus rule -> Alertmanager ->
          promgate's webhook); its HTTPRoute sends it nothing, blue %s serves every request.
search:   green %s aborted by the judge at step 1: its latency, compared window by window
          with blue's (Mann-Whitney, 98%% confidence), was significantly higher; blue %s
          serves every request. Read the verdict with
          kubectl get analysisrun -l promgate.io/rollout=search -o yaml
The demo took %s from the start of the test bed.`, healthy.green, bad.green, alertName, bad.blue, slow.green, slow.blue, out.since().Round(time.Second)))
}

// startBed starts everything the demo runs on; all of it stops when the test ends.
func startBed(t *testing.T, out *printer) *bed {
	entries := make([]trafficsim.Entry, 0, len(apps))
	for _, a := range apps {
		entries = append(entries, trafficsim.Entry{Kind: trafficsim.KindHTTPRoute, Name: a.name, RPS: rps})
	}
	b := fixtures.StartBed(t, fixtures.BedOptions{
		Namespace: ns,
		// A fixed seed: the latencies' noise is the same from run to run.
		Simulator:  trafficsim.Config{Entries: entries, Seed: 14},
		Rules:      map[string]string{"demo.yaml": canaryErrorRatioRule},
		AlertToken: alertToken,
		// The simulator logs read failures and object problems; they belong in the timeline.
		Log: funcr.New(func(_, args string) { out.say("simulator", "%s", args) }, funcr.Options{}),
		Say: func(format string, args ...any) { out.say("bed", format, args...) },
	})
	out.say("bed", "%d requests/s to each of HTTPRoute/checkout, HTTPRoute/payments and HTTPRoute/search; rule %s fires when a canary fails more than 5%% of its requests for 2s", rps, alertName)
	return &bed{b}
}

// rolloutFor is the release policy the apps share; an app judged on latency has its steps
// judged against blue instead of gated on errors.
func rolloutFor(a app, window *v1alpha1.ReleaseWindow) *v1alpha1.Rollout {
	name := a.name
	analysis := &v1alpha1.RolloutAnalysis{Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "error-rate"}}}
	if a.latency != "" {
		analysis = &v1alpha1.RolloutAnalysis{
			Templates: []v1alpha1.RolloutAnalysisTemplate{{TemplateName: "canary-vs-stable"}},
			Args:      []v1alpha1.AnalysisRunArgument{{Name: "entry", Value: ptr.To(trafficsim.KindHTTPRoute + "/" + name)}},
		}
	}
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
// HTTPRoute to it; an app judged on latency answers at blueLatency.
func (b *bed) createApp(t *testing.T, a app) {
	t.Helper()
	objs := fixtures.App(ns, a.name, 5)
	if a.latency != "" {
		objs[0].(*appsv1.Deployment).Spec.Template.Annotations = fixtures.Latency(blueLatency, latencySpread)
	}
	b.Create(t, objs...)
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
	require.NoError(t, fixtures.SetTemplate(context.Background(), b.Client, ns, name, image, errorRate))
}

// setBehaviour pushes a new revision whose pods answer as annotations say.
func (b *bed) setBehaviour(t *testing.T, name, image string, annotations map[string]string) {
	t.Helper()
	require.NoError(t, fixtures.SetBehaviour(context.Background(), b.Client, ns, name, image, annotations))
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
