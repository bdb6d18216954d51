package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	rolloutctl "github.com/promgate/promgate/rollout"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

const (
	// chaosBound is how long a release may take from its new revision (or a human's
	// retry) to a terminal or paused state, faults included.
	chaosBound = 3 * time.Minute
	// chaosStatusLimit is the largest status a Rollout or AnalysisRun may carry.
	chaosStatusLimit = 64 << 10
	// chaosAPIPatience is how long the suite's own API calls retry: longer than a
	// kube-apiserver restart.
	chaosAPIPatience = 2 * time.Minute
	// chaosRetries is how often the suite's human retries an inconclusive step before
	// giving the release up.
	chaosRetries = 2
	// chaosAlert is the alert that aborts a chaos release whose app label it carries.
	chaosAlert = "ChaosCanaryBroken"
)

// The chaos suite's Rollouts; chaos-w has a release window that closes for 10 s of
// every 30 s, so its releases meet a closing window at random steps.
var chaosApps = []string{"chaos-a", "chaos-b", "chaos-w"}

// chaosFault is a kind of fault the suite injects.
type chaosFault string

const (
	faultPrometheusKilled chaosFault = "Prometheus killed and restarted"
	faultPrometheusSlow   chaosFault = "Prometheus slower than the provider timeout"
	faultNaN              chaosFault = "metrics NaN (the app's traffic stops)"
	faultVanished         chaosFault = "the canary's series vanish"
	faultAPIServer        chaosFault = "kube-apiserver restarted"
	faultController       chaosFault = "controller SIGKILLed"
	faultAlertStorm       chaosFault = "alert storm at the webhook"
	faultWindowClosed     chaosFault = "release window closed mid-release"
)

// injected are the faults the injector takes turns through; windows close on their own.
var injected = []chaosFault{faultPrometheusKilled, faultPrometheusSlow, faultNaN, faultVanished, faultAPIServer, faultController, faultAlertStorm}

// chaosInvariant is a property the suite checks; each must hold every time.
type chaosInvariant string

const (
	invPromoted      chaosInvariant = "a step left while its analysis was not Successful"
	invBadCompleted  chaosInvariant = "a bad canary completed"
	invGoodFailed    chaosInvariant = "a good canary failed its analysis"
	invNoEndpoints   chaosInvariant = "traffic to a Service without ready endpoints"
	invBackToOld     chaosInvariant = "traffic back to the old version after completion"
	invAbortOffBlue  chaosInvariant = "an aborted release's traffic off stable before a human acted"
	invUnbounded     chaosInvariant = "a release neither terminal nor paused within the bound"
	invLeftBehind    chaosInvariant = "something generated left after the Rollout's deletion"
	invStatusTooLong chaosInvariant = "a status over 64 KiB"
)

var invariants = []chaosInvariant{invPromoted, invBadCompleted, invGoodFailed, invNoEndpoints, invBackToOld, invAbortOffBlue, invUnbounded, invLeftBehind, invStatusTooLong}

// chaosSteps are the chaos Rollouts' steps: analysis at one pod, a timed pause at half,
// analysis again at full size.
func chaosSteps() []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("20%"), Analysis: fixtures.Analysis("error-rate")},
		{Replicas: ptr.To(intstr.FromString("50%")), Traffic: ptr.To("50%"), Pause: fixtures.Pause(2 * time.Second)},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%"), Analysis: fixtures.Analysis("error-rate")},
	}
}

// TestChaos runs CHAOS_RELEASES releases (default 5; `make chaos` runs 50) over three
// Rollouts at once, good and bad canaries mixed, while faults are injected at random
// times (CHAOS_SEED picks them; the seed is printed), and checks the invariants the whole
// time: the AnalysisRuns and Rollouts are replayed write by write in the API server's
// order, and so is the data plane. It ends with a table of outcomes, faults and
// violations, and the line `chaos: N releases, F faults, V invariant violations`.
func TestChaos(t *testing.T) {
	releases := 5
	if v := os.Getenv("CHAOS_RELEASES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "CHAOS_RELEASES")
		releases = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "CHAOS_SEED")
		seed = n
	}
	t.Logf("chaos: CHAOS_SEED=%d", seed)
	log.SetLogger(logr.Discard())

	const token = "chaos-token"
	var entries []trafficsim.Entry
	for _, app := range chaosApps {
		entries = append(entries, trafficsim.Entry{Kind: trafficsim.KindHTTPRoute, Name: app, RPS: 50})
	}
	fb := fixtures.StartBed(t, fixtures.BedOptions{
		Simulator:       trafficsim.Config{Tick: 50 * time.Millisecond, Entries: entries},
		AlertToken:      token,
		PrometheusProxy: true,
		// Watches served from etcd resume where they stopped across a kube-apiserver
		// restart; the watch cache of a restarted server starts at its restart and answers
		// an older resourceVersion with 410 Gone, a gap in the journal.
		Cluster: testbed.ClusterOptions{APIServerFlags: map[string]string{"watch-cache": "false"}},
	})
	c := &chaos{
		rolloutBed: &rolloutBed{Cluster: fb.Cluster, sim: fb.Sim, pg: fb.Promgate, ns: fb.Namespace},
		bed:        fb, token: token, entries: entries,
		rng:      rand.New(rand.NewPCG(seed, seed>>1|1)),
		apps:     map[string]*chaosApp{},
		outcomes: map[string]int{}, faults: map[chaosFault]int{}, violations: map[chaosInvariant][]string{},
	}
	template := fixtures.ErrorRateTemplate(c.ns, "error-rate", "0.05")
	// Past this, the proxy's delay is an outage to the provider.
	template.Spec.Metrics[0].Provider.Prometheus.Timeout = ptr.To(intstr.FromString("1s"))
	c.create(t, template)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wc, err := client.NewWithWatch(c.Config, client.Options{Scheme: testbed.Scheme()})
	require.NoError(t, err)
	for _, app := range chaosApps {
		c.setUp(t, app)
	}
	// From here on: the apps' first pods becoming ready is not a release.
	c.journal, err = trafficsim.StartJournal(ctx, wc, c.ns, &v1alpha1.RolloutList{}, &v1alpha1.AnalysisRunList{})
	require.NoError(t, err)

	injectCtx, stopInjecting := context.WithCancel(ctx)
	injecting := make(chan struct{})
	go func() {
		defer close(injecting)
		c.inject(injectCtx, t)
	}()
	t.Run("releases", func(t *testing.T) {
		// Not t.Parallel: that runs only -parallel (GOMAXPROCS) of them at once.
		var wg sync.WaitGroup
		for k, app := range chaosApps {
			wg.Go(func() {
				t.Run(app, func(t *testing.T) {
					for i := k; i < releases; i += len(chaosApps) {
						c.release(t, app, i)
					}
				})
			})
		}
		wg.Wait()
	})
	stopInjecting()
	<-injecting

	c.audit(t)
	t.Run("delete", func(t *testing.T) {
		for _, app := range chaosApps {
			c.deleteRollout(t, app)
		}
	})
	c.report(t, releases)
	if t.Failed() {
		fmt.Println(c.kubectl(t, "get", "rollouts,rs,svc,deploy,analysisruns,httproutes", "-o", "wide"))
	}
}

// chaos is the suite's state: the bed, what every release did, and the tallies.
type chaos struct {
	*rolloutBed
	bed     *fixtures.Bed
	token   string
	entries []trafficsim.Entry
	journal *trafficsim.Journal

	mu         sync.Mutex
	rng        *rand.Rand
	apps       map[string]*chaosApp
	bad        map[string]bool // revisions with a bad canary's error rate
	outcomes   map[string]int
	faults     map[chaosFault]int
	violations map[chaosInvariant][]string
	longest    time.Duration
	alerts     int
}

// chaosApp is one Rollout's app: what it looked like before promgate, and its release now.
type chaosApp struct {
	orig     *appsv1.Deployment
	selector map[string]string
	route    []map[string]int32
	// image and errorRate are the stable revision's.
	image, errorRate string
	// canary is the revision being released, "" between releases.
	canary string
}

func (c *chaos) setUp(t *testing.T, app string) {
	t.Helper()
	a := &chaosApp{orig: fixtures.Deployment(c.ns, app, 4), image: fixtures.BlueImage, errorRate: "0"}
	c.create(t, a.orig, fixtures.Service(c.ns, app), fixtures.HTTPRoute(c.ns, app))
	a.selector, a.route = c.selector(t, app), c.routeWeights(t, app)
	ro := fixtures.Rollout(c.ns, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
		Steps: chaosSteps(), TrafficRoutings: fixtures.GatewayRouting(app),
	}})
	ro.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="` + chaosAlert + `"`, `app="` + app + `"`}}}}
	if app == "chaos-w" {
		ro.Spec.ReleaseWindow = &v1alpha1.ReleaseWindow{Schedule: "*/30 * * * * *", Duration: metav1.Duration{Duration: 20 * time.Second}}
	}
	c.create(t, ro)
	c.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
	c.apps[app] = a
}

// api retries fn until it succeeds, as a client waiting out a control-plane restart does.
func (c *chaos) api(t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, chaosAPIPatience, true, func(ctx context.Context) (bool, error) {
		last = fn(ctx)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
}

func (c *chaos) rollout(t *testing.T, app string) *v1alpha1.Rollout {
	t.Helper()
	var ro v1alpha1.Rollout
	c.api(t, "reading Rollout "+app, func(ctx context.Context) error {
		return c.Client.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: app}, &ro)
	})
	return &ro
}

// await polls the Rollout until done says so; past the release's bound it records the
// violation and fails.
func (c *chaos) await(t *testing.T, app string, since time.Time, what string, done func(*v1alpha1.Rollout) bool) *v1alpha1.Rollout {
	t.Helper()
	for {
		ro := c.rollout(t, app)
		if done(ro) {
			return ro
		}
		if time.Since(since) > chaosBound {
			c.violate(invUnbounded, "%s: no %s within %s", app, what, chaosBound)
			t.Fatalf("Rollout %s never reached %s within %s\n%s", app, what, chaosBound, c.explain(t, ro))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// release runs release i of app: a new revision, good or bad at random, followed to its
// end as a human on call would: a completed release is left alone, an aborted one is
// reverted, an inconclusive step is retried a few times and then reverted.
func (c *chaos) release(t *testing.T, app string, i int) {
	c.mu.Lock()
	a := c.apps[app]
	bad := c.rng.IntN(5) < 2
	c.mu.Unlock()
	blue := c.rollout(t, app).Status.StableRevision
	image, errorRate := fmt.Sprintf("echoserver:%s-%d", app, i+1), "0"
	if bad {
		errorRate = "0.3"
	}
	c.setTemplate(t, app, image, errorRate)
	start := time.Now()
	ro := c.await(t, app, start, "new release", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CanaryRevision != "" && ro.Status.CanaryRevision != blue
	})
	green := ro.Status.CanaryRevision
	c.mu.Lock()
	a.canary = green
	if bad {
		if c.bad == nil {
			c.bad = map[string]bool{}
		}
		c.bad[green] = true
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		a.canary = ""
		c.mu.Unlock()
	}()
	kind := map[bool]string{false: "good", true: "bad"}[bad]

	for retries := 0; ; retries++ {
		ro = c.await(t, app, start, "terminal or paused state", func(ro *v1alpha1.Rollout) bool {
			return completed(ro, green) || aborted(ro, green) || inconclusive(ro)
		})
		c.took(time.Since(start))
		switch {
		case completed(ro, green):
			c.outcome(kind + " canary: completed")
			c.await(t, app, start, "settled release", func(ro *v1alpha1.Rollout) bool {
				return ro.Status.CanaryRevision == "" && ro.Status.StableRevision == green
			})
			c.mu.Lock()
			a.image, a.errorRate = image, errorRate
			c.mu.Unlock()
			return
		case aborted(ro, green):
			why := abortCause(ro)
			c.outcome(kind + " canary: aborted, " + why)
			if !bad && why == "analysis Failed" {
				c.violate(invGoodFailed, "%s: revision %s: %s", app, green, ro.Status.AbortReason)
			}
			c.revert(t, app, blue)
			return
		case retries < chaosRetries:
			c.outcome(kind + " canary: inconclusive, retried")
			step := ro.Status.CurrentStepIndex
			c.patchRolloutStatus(t, app, map[string]any{"nextStepIndex": step})
			start = time.Now()
			c.await(t, app, start, "the retry taken", func(ro *v1alpha1.Rollout) bool {
				return ro.Status.NextStepIndex == 0 && !inconclusive(ro)
			})
		default:
			c.outcome(kind + " canary: inconclusive, reverted")
			c.revert(t, app, blue)
			return
		}
	}
}

// completed says the release of green completed (or has already settled).
func completed(ro *v1alpha1.Rollout, green string) bool {
	st := ro.Status
	return (st.Phase == v1alpha1.RolloutPhaseCompleted && st.CanaryRevision == green) || (st.CanaryRevision == "" && st.StableRevision == green)
}

func aborted(ro *v1alpha1.Rollout, green string) bool {
	return ro.Status.Phase == v1alpha1.RolloutPhaseAborted && ro.Status.CanaryRevision == green
}

// inconclusive says a step's analysis came back inconclusive and the release waits for a human.
func inconclusive(ro *v1alpha1.Rollout) bool {
	st := ro.Status
	cond := apimeta.FindStatusCondition(st.Conditions, rolloutctl.ConditionProgressing)
	return st.Phase == v1alpha1.RolloutPhasePaused && !st.Held && cond != nil && cond.Reason == "AnalysisInconclusive"
}

// abortCause names what aborted a release, from its report: an alert, or the verdict of
// the analysis that decided.
func abortCause(ro *v1alpha1.Rollout) string {
	r := ro.Status.Report
	if r == nil {
		return "without a report"
	}
	if r.DecidedBy != v1alpha1.DecidedByAnalysis {
		return "by " + string(r.DecidedBy)
	}
	for i := len(r.Steps) - 1; i >= 0; i-- {
		if v := r.Steps[i].Verdict; v == "Failed" || v == "Error" {
			return "analysis " + v
		}
	}
	return "analysis, verdict unrecorded"
}

// revert puts the stable revision's template back, which cancels the release.
func (c *chaos) revert(t *testing.T, app, blue string) {
	t.Helper()
	c.mu.Lock()
	image, errorRate := c.apps[app].image, c.apps[app].errorRate
	c.mu.Unlock()
	c.setTemplate(t, app, image, errorRate)
	c.await(t, app, time.Now(), "cancelled release", func(ro *v1alpha1.Rollout) bool {
		return ro.Status.CanaryRevision == "" && ro.Status.StableRevision == blue
	})
}

func (c *chaos) setTemplate(t *testing.T, app, image, errorRate string) {
	t.Helper()
	c.api(t, "setting the template of "+app, func(ctx context.Context) error {
		return fixtures.SetTemplate(ctx, c.Client, c.ns, app, image, errorRate)
	})
}

// patchRolloutStatus is a human command, the documented status patch.
func (c *chaos) patchRolloutStatus(t *testing.T, app string, status map[string]any) {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"status": status})
	require.NoError(t, err)
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: app}}
	c.api(t, "patching the status of "+app, func(ctx context.Context) error {
		return c.Client.Status().Patch(ctx, ro, client.RawPatch(types.MergePatchType, raw))
	})
}

func (c *chaos) outcome(o string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outcomes[o]++
}

func (c *chaos) took(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.longest = max(c.longest, d)
}

func (c *chaos) violate(inv chaosInvariant, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violations[inv] = append(c.violations[inv], fmt.Sprintf(format, args...))
}

// between is a random duration in [lo, hi).
func (c *chaos) between(lo, hi time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

// releasing picks an app with a release in progress (any app when none is) and its canary.
func (c *chaos) releasing() (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var busy []string
	for _, app := range chaosApps {
		if c.apps[app].canary != "" {
			busy = append(busy, app)
		}
	}
	if len(busy) == 0 {
		app := chaosApps[c.rng.IntN(len(chaosApps))]
		return app, ""
	}
	app := busy[c.rng.IntN(len(busy))]
	return app, c.apps[app].canary
}

// inject injects faults one after another at random intervals, taking turns through every
// kind in a random order, until ctx ends; a fault begun is always undone.
func (c *chaos) inject(ctx context.Context, t *testing.T) {
	kinds := append([]chaosFault(nil), injected...)
	for {
		c.mu.Lock()
		c.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		c.mu.Unlock()
		for _, k := range kinds {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.between(2*time.Second, 8*time.Second)):
			}
			if err := c.fault(t, k); err != nil {
				t.Errorf("injecting %s: %v", k, err)
			}
			c.mu.Lock()
			c.faults[k]++
			c.mu.Unlock()
		}
	}
}

// fault injects one fault, waits out its duration, and undoes it.
func (c *chaos) fault(t *testing.T, k chaosFault) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	app, canary := c.releasing()
	t.Logf("chaos %s: %s (app %s)", time.Now().Format(time.StampMilli), k, app)
	switch k {
	case faultPrometheusKilled:
		c.bed.Prometheus.Kill()
		time.Sleep(c.between(2*time.Second, 8*time.Second))
		return c.bed.Prometheus.Restart(ctx)
	case faultPrometheusSlow:
		c.bed.PrometheusProxy.SetDelay(2 * time.Second)
		time.Sleep(c.between(4*time.Second, 10*time.Second))
		c.bed.PrometheusProxy.SetDelay(0)
	case faultNaN:
		if err := c.sim.SetRPS(trafficsim.KindHTTPRoute, app, 0); err != nil {
			return err
		}
		time.Sleep(c.between(6*time.Second, 12*time.Second))
		return c.sim.SetRPS(trafficsim.KindHTTPRoute, app, 50)
	case faultVanished:
		if canary == "" {
			var ro v1alpha1.Rollout
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: app}, &ro); err != nil {
				return fmt.Errorf("reading Rollout %s: %w", app, err)
			}
			canary = ro.Status.StableRevision
		}
		c.sim.Silence(canary, true)
		time.Sleep(c.between(6*time.Second, 12*time.Second))
		c.sim.Silence(canary, false)
	case faultAPIServer:
		return c.ControlPlane.RestartAPIServer(t, ctx, c.between(time.Second, 4*time.Second))
	case faultController:
		c.pg.Kill()
		time.Sleep(c.between(500*time.Millisecond, 3*time.Second))
		return c.pg.Restart(ctx)
	case faultAlertStorm:
		return c.storm(ctx, c.between(3*time.Second, 6*time.Second))
	}
	return nil
}

// stormRate is the storm's pace: deliveries a second, each of 100 alerts.
const stormRate = 50

// storm sends the webhook thousands of alerts a second for d: near misses of the
// Rollouts' matchers, resolved alerts, and now and then (one storm in three) one firing
// alert that does match a release in progress.
func (c *chaos) storm(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	matchAt := -1
	if c.rng.IntN(3) == 0 {
		matchAt = c.rng.IntN(10)
	}
	c.mu.Unlock()
	target, _ := c.releasing()
	deadline := time.Now().Add(d)
	var sent, refused atomic.Int64
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second}
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			tick := time.NewTicker(time.Second * workers / stormRate)
			defer tick.Stop()
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				<-tick.C
				var alerts []map[string]any
				for j := range 100 {
					labels := map[string]string{"alertname": chaosAlert, "app": fmt.Sprintf("other-%d", j)}
					status := "firing"
					switch j % 4 {
					case 1:
						labels = map[string]string{"alertname": "HighLatency", "app": chaosApps[j%len(chaosApps)]}
					case 2:
						labels["app"] = chaosApps[j%len(chaosApps)]
						status = "resolved"
					case 3:
						labels = map[string]string{"alertname": chaosAlert}
					}
					if w == 0 && n == matchAt && j == 0 {
						labels = map[string]string{"alertname": chaosAlert, "app": target, "severity": "page"}
					}
					alerts = append(alerts, map[string]any{"status": status, "labels": labels})
				}
				body, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "promgate", "groupKey": "chaos", "alerts": alerts})
				if err != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.bed.Webhook+fixtures.AlertWebhookPath, bytes.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					refused.Add(1)
				}
				sent.Add(int64(len(alerts)))
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	c.alerts += int(sent.Load())
	c.mu.Unlock()
	if n := refused.Load(); n > 0 {
		// Alertmanager resends what the receiver refused; the suite's storm does not.
		fmt.Printf("chaos: alert storm: %d of its requests got no 200 (controller down or restarting)\n", n)
	}
	return nil
}

// audit replays every write the journal saw, in the API server's order, and checks the
// invariants on each: steps left only on a Successful analysis of that very attempt,
// bad canaries never completed, statuses small, and the data plane after each write
// routing only to ready endpoints, never back to the old version after completion and
// all to stable while a release is aborted.
func (c *chaos) audit(t *testing.T) {
	t.Helper()
	if err := c.journal.Err(); err != nil {
		t.Errorf("the journal has gaps, so the replay proves nothing: %v", err)
	}
	type runState struct {
		created int64
		phase   v1alpha1.AnalysisPhase
	}
	runs := map[string]*runState{}
	prev := map[string]*v1alpha1.Rollout{}
	entered := map[string]int64{} // rollout/revision/step → resourceVersion it was entered at
	reported := map[string]bool{}
	largest, writes := 0, 0
	c.mu.Lock()
	bad := c.bad
	c.mu.Unlock()
	once := func(inv chaosInvariant, key, format string, args ...any) {
		if !reported[string(inv)+key] {
			reported[string(inv)+key] = true
			c.violate(inv, format, args...)
		}
	}
	c.journal.Replay(c.entries, func(w trafficsim.Write, snap trafficsim.Snapshot) {
		writes++
		switch o := w.Object.(type) {
		case *v1alpha1.AnalysisRun:
			if r, ok := runs[o.Name]; ok {
				r.phase = o.Status.Phase
			} else {
				runs[o.Name] = &runState{created: w.ResourceVersion, phase: o.Status.Phase}
			}
			if n := statusSize(o.Status); n > chaosStatusLimit {
				once(invStatusTooLong, o.Name, "AnalysisRun %s: status of %d bytes", o.Name, n)
			}
			largest = max(largest, statusSize(o.Status))
		case *v1alpha1.Rollout:
			if n := statusSize(o.Status); n > chaosStatusLimit {
				once(invStatusTooLong, o.Name, "Rollout %s: status of %d bytes", o.Name, n)
			}
			largest = max(largest, statusSize(o.Status))
			st, p := o.Status, prev[o.Name]
			prev[o.Name] = o
			if st.CanaryRevision != "" && (p == nil || p.Status.CanaryRevision != st.CanaryRevision || p.Status.CurrentStepIndex != st.CurrentStepIndex ||
				(st.CurrentStepState == v1alpha1.StepUpgrade && p.Status.CurrentStepState != v1alpha1.StepUpgrade)) {
				entered[fmt.Sprintf("%s/%s/%d", o.Name, st.CanaryRevision, st.CurrentStepIndex)] = w.ResourceVersion
			}
			if bad[st.CanaryRevision] && st.Phase == v1alpha1.RolloutPhaseCompleted || bad[st.StableRevision] {
				once(invBadCompleted, o.Name+st.CanaryRevision+st.StableRevision, "Rollout %s completed bad revision %s (resourceVersion %d)", o.Name, st.CanaryRevision, w.ResourceVersion)
			}
			if p == nil {
				return
			}
			ps := p.Status
			if ps.CanaryRevision != "" && !ps.Held && st.Held && st.CanaryRevision == ps.CanaryRevision && ps.Phase == v1alpha1.RolloutPhaseProgressing {
				c.mu.Lock()
				c.faults[faultWindowClosed]++
				c.mu.Unlock()
			}
			for _, k := range leftSteps(p, o) {
				steps := o.Spec.Strategy.Canary.Steps
				if int(k) > len(steps) || steps[k-1].Analysis == nil {
					continue
				}
				key := fmt.Sprintf("%s/%s/%d", o.Name, ps.CanaryRevision, k)
				prefix := fmt.Sprintf("%s-%s-step%d-", o.Name, ps.CanaryRevision, k)
				var latest string
				for name, r := range runs {
					if strings.HasPrefix(name, prefix) && r.created > entered[key] && (latest == "" || r.created > runs[latest].created) {
						latest = name
					}
				}
				switch {
				case latest == "":
					once(invPromoted, key, "Rollout %s left step %d of revision %s with no analysis run since the step began (resourceVersion %d)", o.Name, k, ps.CanaryRevision, w.ResourceVersion)
				case runs[latest].phase != v1alpha1.AnalysisPhaseSuccessful:
					once(invPromoted, key, "Rollout %s left step %d of revision %s while AnalysisRun %s was %q (resourceVersion %d)", o.Name, k, ps.CanaryRevision, latest, runs[latest].phase, w.ResourceVersion)
				}
			}
		}
		for _, e := range c.entries {
			ro := prev[e.Name]
			if ro == nil {
				continue
			}
			st := ro.Status
			for b, share := range snap.Entry(e.Kind, e.Name).All {
				if share == 0 {
					continue
				}
				at := fmt.Sprintf("after %s %s (resourceVersion %d, seen %s), %.0f%% of %s's requests", w.Kind, w.Name, w.ResourceVersion, w.Seen.Format(time.StampMicro), share*100, e.Name)
				switch {
				case b.Service != "" && b.Revision == "":
					once(invNoEndpoints, fmt.Sprint(w.ResourceVersion, e.Name), "%s went to Service %s without ready endpoints", at, b.Service)
				case st.Phase == v1alpha1.RolloutPhaseCompleted && st.CanaryRevision != "" && b.Revision == st.StableRevision:
					once(invBackToOld, fmt.Sprint(w.ResourceVersion, e.Name), "%s went back to the old version %s after the release completed", at, b.Revision)
				case st.Phase == v1alpha1.RolloutPhaseAborted && b.Revision != st.StableRevision:
					once(invAbortOffBlue, fmt.Sprint(w.ResourceVersion, e.Name), "%s went to revision %s, not stable %s, while the release was aborted", at, b.Revision, st.StableRevision)
				}
			}
		}
	})
	t.Logf("chaos: replayed %d writes; %d AnalysisRuns; largest status %d bytes", writes, len(runs), largest)
}

// leftSteps are the steps a Rollout left between two versions of it without a human
// jump: the step it was at and any it skipped, when it went forward or completed.
func leftSteps(p, o *v1alpha1.Rollout) []int32 {
	ps, st := p.Status, o.Status
	if ps.CanaryRevision == "" || (ps.Phase != v1alpha1.RolloutPhaseProgressing && ps.Phase != v1alpha1.RolloutPhasePaused) || ps.CurrentStepIndex < 1 {
		return nil
	}
	last := ps.CurrentStepIndex - 1
	switch {
	case st.CanaryRevision == ps.CanaryRevision && st.Phase != v1alpha1.RolloutPhaseAborted && st.CurrentStepIndex > ps.CurrentStepIndex:
		last = st.CurrentStepIndex - 1
	case (st.CanaryRevision == ps.CanaryRevision && st.Phase == v1alpha1.RolloutPhaseCompleted) || (st.CanaryRevision == "" && st.StableRevision == ps.CanaryRevision):
		last = int32(len(o.Spec.Strategy.Canary.Steps))
	}
	var left []int32
	for k := ps.CurrentStepIndex; k <= last; k++ {
		left = append(left, k)
	}
	return left
}

func statusSize(status any) int {
	raw, err := json.Marshal(status)
	if err != nil {
		return 0
	}
	return len(raw)
}

// deleteRollout deletes app's Rollout and checks nothing promgate generated is left: no
// AnalysisRun, no canary Service, the Deployment, Service and HTTPRoute as they were.
func (c *chaos) deleteRollout(t *testing.T, app string) {
	t.Helper()
	ro := c.rollout(t, app)
	c.api(t, "deleting Rollout "+app, func(ctx context.Context) error { return client.IgnoreNotFound(c.Client.Delete(ctx, ro)) })
	c.api(t, "waiting for Rollout "+app+" to go", func(ctx context.Context) error {
		err := c.Client.Get(ctx, client.ObjectKeyFromObject(ro), &v1alpha1.Rollout{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	a := c.apps[app]
	left := func(format string, args ...any) {
		c.violate(invLeftBehind, "%s: "+format, append([]any{app}, args...)...)
	}
	var runs v1alpha1.AnalysisRunList
	c.api(t, "listing AnalysisRuns", func(ctx context.Context) error {
		return c.Client.List(ctx, &runs, client.InNamespace(c.ns), client.MatchingLabels{"promgate.io/rollout": app})
	})
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return c.Client.List(ctx, &runs, client.InNamespace(c.ns), client.MatchingLabels{"promgate.io/rollout": app}) == nil && len(runs.Items) == 0, nil
	}); err != nil {
		left("%d AnalysisRuns", len(runs.Items))
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return c.absent(t, &corev1.Service{}, app+"-canary"), nil
	}); err != nil {
		left("Service %s-canary", app)
	}
	var d appsv1.Deployment
	c.api(t, "reading Deployment "+app, func(ctx context.Context) error { return c.Client.Get(ctx, client.ObjectKeyFromObject(a.orig), &d) })
	if d.Spec.Paused || d.Spec.MinReadySeconds != a.orig.Spec.MinReadySeconds || !equalJSON(d.Spec.Strategy, a.orig.Spec.Strategy) {
		left("the Deployment is not as it was: paused %v, minReadySeconds %d, strategy %+v", d.Spec.Paused, d.Spec.MinReadySeconds, d.Spec.Strategy)
	}
	for k := range d.Annotations {
		if strings.HasPrefix(k, "promgate.io/") {
			left("Deployment annotation %s", k)
		}
	}
	if got := c.selector(t, app); !equalJSON(got, a.selector) {
		left("Service selector %v, was %v", got, a.selector)
	}
	var route gatewayv1.HTTPRoute
	c.api(t, "reading HTTPRoute "+app, func(ctx context.Context) error {
		return c.Client.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: app}, &route)
	})
	if got := c.routeWeights(t, app); !equalJSON(got, a.route) {
		left("HTTPRoute weights %v, were %v", got, a.route)
	}
	for k := range route.Annotations {
		if strings.HasPrefix(k, "promgate.io/") {
			left("HTTPRoute annotation %s", k)
		}
	}
}

func equalJSON(a, b any) bool {
	ra, errA := json.Marshal(a)
	rb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ra, rb)
}

// report prints the table and the closing line, and fails the test on any violation.
func (c *chaos) report(t *testing.T, releases int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "chaos: releases by outcome (a retried step counts once per retry)\n")
	var outcomes []string
	for o := range c.outcomes {
		outcomes = append(outcomes, o)
	}
	sort.Strings(outcomes)
	for _, o := range outcomes {
		fmt.Fprintf(&sb, "  %-55s %5d\n", o, c.outcomes[o])
	}
	fmt.Fprintf(&sb, "chaos: faults by kind\n")
	faults := 0
	for _, k := range append(append([]chaosFault(nil), injected...), faultWindowClosed) {
		fmt.Fprintf(&sb, "  %-55s %5d\n", k, c.faults[k])
		faults += c.faults[k]
	}
	fmt.Fprintf(&sb, "  (%d alerts sent by the storms)\n", c.alerts)
	fmt.Fprintf(&sb, "chaos: invariant violations\n")
	violations := 0
	for _, inv := range invariants {
		fmt.Fprintf(&sb, "  %-66s %5d\n", inv, len(c.violations[inv]))
		violations += len(c.violations[inv])
	}
	fmt.Fprintf(&sb, "chaos: bound %s from a new revision or a retry to a terminal or paused state; longest %s\n", chaosBound, c.longest.Round(time.Millisecond))
	fmt.Fprintf(&sb, "chaos: %d releases, %d faults, %d invariant violations\n", releases, faults, violations)
	fmt.Print(sb.String())
	for _, inv := range invariants {
		for i, v := range c.violations[inv] {
			if i < 10 {
				t.Errorf("%s: %s", inv, v)
			}
		}
	}
}
