package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

const alertToken = "night-shift-token"

// canaryErrorsRule fires while any entry point answers errors from a canary Service.
const canaryErrorsRule = `groups:
- name: promgate-e2e
  rules:
  - alert: CanaryErrors
    expr: sum by (entry) (rate(promgate_sim_requests_total{code="500",service=~".*-canary"}[5s])) > 1
    labels: {severity: page}
`

// unattendedBed adds Alertmanager, an alerting rule and promgate's webhook receiver to
// the rollout bed.
type unattendedBed struct {
	*rolloutBed
	webhook string
}

func startUnattendedBed(t *testing.T) *unattendedBed {
	t.Helper()
	fb := fixtures.StartBed(t, fixtures.BedOptions{
		Simulator: trafficsim.Config{Entries: []trafficsim.Entry{
			{Kind: trafficsim.KindHTTPRoute, Name: "alerting", RPS: 50},
			{Kind: trafficsim.KindHTTPRoute, Name: "nightly", RPS: 50},
			{Kind: trafficsim.KindHTTPRoute, Name: "closing", RPS: 50},
			{Kind: trafficsim.KindHTTPRoute, Name: "holding", RPS: 50},
		}},
		Rules:      map[string]string{"canary.yaml": canaryErrorsRule},
		AlertToken: alertToken,
	})
	return &unattendedBed{rolloutBed: &rolloutBed{Cluster: fb.Cluster, sim: fb.Sim, pg: fb.Promgate, ns: fb.Namespace}, webhook: fb.Webhook}
}

func (b *unattendedBed) post(t *testing.T, method, token string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+b.webhook+fixtures.AlertWebhookPath, bytes.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func canarySteps(pause v1alpha1.RolloutPause) []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("50%"), Pause: &pause},
		{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%"), Pause: &v1alpha1.RolloutPause{}},
	}
}

// cronAt is a six-field (seconds) cron schedule firing once a day at t, in UTC.
func cronAt(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %d %d * * *", t.Second(), t.Minute(), t.Hour())
}

// setWindow gives the Rollout a release window, as a user editing its spec would.
func (b *unattendedBed) setWindow(t *testing.T, name string, w *v1alpha1.ReleaseWindow) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ro := b.get(t, name)
		ro.Spec.ReleaseWindow = w
		return b.Client.Update(context.Background(), ro)
	}))
}

// notifyReceiver records the release reports POSTed to it and answers 500 to the first.
type notifyReceiver struct {
	mu    sync.Mutex
	posts []notifyPost
}

type notifyPost struct {
	contentType string
	body        []byte
}

func (n *notifyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || err != nil {
		http.Error(w, "want a POST with a body", http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	n.posts = append(n.posts, notifyPost{contentType: r.Header.Get("Content-Type"), body: body})
	first := len(n.posts) == 1
	n.mu.Unlock()
	if first {
		http.Error(w, "receiver restarting", http.StatusInternalServerError)
	}
}

func (n *notifyReceiver) received() []notifyPost {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notifyPost(nil), n.posts...)
}

// TestUnattended: releases nobody watches. An alert from a real Prometheus rule, delivered
// by the real Alertmanager, aborts a bad release; a release window holds a new revision,
// promotes through pauses inside it, and applies its close policy; the release report
// reaches a notification webhook even when its first delivery fails.
func TestUnattended(t *testing.T) {
	b := startUnattendedBed(t)

	t.Run("a firing alert aborts the release and bad webhook calls change nothing", func(t *testing.T) {
		const app = "alerting"
		b.app(t, app)
		b.httpRoute(t, app)
		b.create(t, &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps:           canarySteps(v1alpha1.RolloutPause{}),
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
				AbortOn: &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="CanaryErrors"`, `entry=~"HTTPRoute/alerting"`}}}},
			},
		})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
		b.setTemplate(t, app, "echoserver:green", "0")
		b.waitStep(t, app, 1, v1alpha1.StepPaused, time.Minute)

		payload := []byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CanaryErrors","entry":"HTTPRoute/alerting"}}]}`)
		assert.Equal(t, http.StatusUnauthorized, b.post(t, http.MethodPost, "", payload))
		assert.Equal(t, http.StatusUnauthorized, b.post(t, http.MethodPost, "wrong", payload))
		assert.Equal(t, http.StatusMethodNotAllowed, b.post(t, http.MethodGet, alertToken, nil))
		assert.Equal(t, http.StatusBadRequest, b.post(t, http.MethodPost, alertToken, []byte(`{"version":"4","alerts":[`)))
		assert.Equal(t, http.StatusRequestEntityTooLarge, b.post(t, http.MethodPost, alertToken, bytes.Repeat([]byte(" "), 2<<20)))
		resolved := strings.ReplaceAll(string(payload), "firing", "resolved")
		assert.Equal(t, http.StatusOK, b.post(t, http.MethodPost, alertToken, []byte(resolved)))
		time.Sleep(time.Second)
		ro := b.get(t, app)
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase, "no bad or resolved call aborts")
		assert.Nil(t, ro.Status.AlertAbort)

		// Green answers 60% errors: the rule fires on the simulator's metrics.
		b.setTemplate(t, app, "echoserver:green", "0.6")
		ro = b.waitPhase(t, app, 2*time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Contains(t, ro.Status.Message, "alert CanaryErrors firing")
		assert.Contains(t, ro.Status.AbortReason, `entry="HTTPRoute/alerting"`)
		assert.Contains(t, ro.Status.AbortReason, "(webhook)", "delivered by Alertmanager's webhook")
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app), "all traffic back on the stable version")
		require.NotNil(t, ro.Status.Report)
		assert.Equal(t, v1alpha1.DecidedByAlert, ro.Status.Report.DecidedBy)

		// Alertmanager repeats the alert; nothing changes.
		assert.Equal(t, http.StatusOK, b.post(t, http.MethodPost, alertToken, payload))
		time.Sleep(time.Second)
		again := b.get(t, app)
		assert.Equal(t, v1alpha1.RolloutPhaseAborted, again.Status.Phase)
		assert.Equal(t, ro.Status.Report.EndedAt, again.Status.Report.EndedAt, "one abort, one report")
	})

	t.Run("a release waits for its window and runs inside it unattended", func(t *testing.T) {
		const app = "nightly"
		b.app(t, app)
		b.httpRoute(t, app)
		// Whole seconds, as the cron schedule fires: the window opens at exactly this time.
		opens := time.Now().Add(12 * time.Second).Truncate(time.Second)
		b.create(t, &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps:           canarySteps(v1alpha1.RolloutPause{}),
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
				ReleaseWindow: &v1alpha1.ReleaseWindow{Schedule: cronAt(opens), Duration: metav1.Duration{Duration: 2 * time.Minute}},
			},
		})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
		blue := b.get(t, app).Status.StableRevision
		b.setTemplate(t, app, "echoserver:green", "0")
		ro := b.waitPhase(t, app, 30*time.Second, v1alpha1.RolloutPhasePaused)
		require.True(t, time.Now().Before(opens), "the bed was too slow to see the window closed")
		assert.True(t, ro.Status.Held)
		assert.Equal(t, v1alpha1.StepPaused, ro.Status.CurrentStepState)
		assert.Contains(t, ro.Status.Message, "waits for the release window: next opening at "+opens.UTC().Format("2006-01-02T15:04:05"))
		assert.Equal(t, map[string]int{blue: 5}, b.pods(t, app), "no new pod before the window opens")

		ro = b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)
		assert.False(t, time.Now().Before(opens), "completed only once the window opened")
		require.NotNil(t, ro.Status.Report)
		for _, st := range ro.Status.Report.Steps {
			assert.Equal(t, v1alpha1.DecidedByWindow, st.DecidedBy, "step %d promoted by the window, not a human", st.Index)
		}
	})

	t.Run("a window closing mid-release aborts with onClose Abort", func(t *testing.T) {
		const app = "closing"
		b.app(t, app)
		b.httpRoute(t, app)
		opened := time.Now().Add(-time.Second)
		b.create(t, &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps:           canarySteps(v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: time.Minute}}),
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
				ReleaseWindow: &v1alpha1.ReleaseWindow{Schedule: cronAt(opened), Duration: metav1.Duration{Duration: 15 * time.Second}, OnClose: v1alpha1.WindowAbort},
			},
		})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
		b.setTemplate(t, app, "echoserver:green", "0")
		ro := b.waitStep(t, app, 1, v1alpha1.StepPaused, 30*time.Second)
		require.False(t, ro.Status.Held, "inside the window")
		ro = b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseAborted)
		assert.Contains(t, ro.Status.AbortReason, "release window closed")
		assert.Equal(t, []map[string]int32{{app: 100, app + "-canary": 0}}, b.routeWeights(t, app))
		assert.Equal(t, v1alpha1.DecidedByWindow, ro.Status.Report.DecidedBy)
	})

	t.Run("a window closing mid-release holds the step and its traffic with onClose Hold", func(t *testing.T) {
		const app = "holding"
		// The step's pause outlasts the window: only the hold keeps the release at step 1.
		const pause, open = 10 * time.Second, 8 * time.Second
		b.app(t, app)
		b.httpRoute(t, app)
		b.create(t, &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps:           canarySteps(v1alpha1.RolloutPause{Duration: &metav1.Duration{Duration: pause}}),
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
			},
		})
		blue := b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy).Status.StableRevision
		// Set once the Rollout is adopted, so the window's seconds are all the release's.
		opened := time.Now().Add(-time.Second).Truncate(time.Second)
		closes := opened.Add(open)
		b.setWindow(t, app, &v1alpha1.ReleaseWindow{Schedule: cronAt(opened), Duration: metav1.Duration{Duration: open}})
		b.setTemplate(t, app, "echoserver:green", "0")
		ro := b.waitStep(t, app, 1, v1alpha1.StepPaused, open)
		require.True(t, time.Now().Before(closes), "the bed was too slow to reach the pause inside the window")
		require.False(t, ro.Status.Held, "inside the window")
		green := ro.Status.CanaryRevision
		pauseEnds := ro.Status.StepStartedAt.Add(pause)
		weights := []map[string]int32{{app: 50, app + "-canary": 50}}
		require.Equal(t, weights, b.routeWeights(t, app))

		held := assert.Eventually(t, func() bool { ro = b.get(t, app); return ro.Status.Held }, time.Until(closes)+10*time.Second, 100*time.Millisecond,
			"the window closed at %s and the release is not held", closes.UTC().Format(time.TimeOnly))
		require.True(t, held, "status: %+v", ro.Status)
		assert.False(t, time.Now().Before(closes), "held only once the window closed")
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase)
		assert.Equal(t, &v1alpha1.WindowStatus{Open: false, NextOpen: opened.Add(24 * time.Hour).UTC().Format(time.RFC3339)}, ro.Status.Window)
		assert.Contains(t, ro.Status.Message, "step(1/2)")
		assert.Contains(t, ro.Status.Message, "holding until it opens at "+ro.Status.Window.NextOpen)

		// Past the end of the step's pause, the release has not moved.
		time.Sleep(time.Until(pauseEnds) + time.Second)
		ro = b.get(t, app)
		assert.True(t, ro.Status.Held)
		assert.Equal(t, v1alpha1.RolloutPhasePaused, ro.Status.Phase)
		assert.Equal(t, int32(1), ro.Status.CurrentStepIndex)
		assert.Equal(t, v1alpha1.StepPaused, ro.Status.CurrentStepState)
		assert.Equal(t, weights, b.routeWeights(t, app), "the traffic stays as it was")
		assert.Equal(t, map[string]int{blue: 5, green: 1}, b.pods(t, app), "no pod of step 2")
		looked := time.Now()
		assert.Eventually(t, func() bool {
			snap := b.sim.Snapshot()
			split := snap.Entry(trafficsim.KindHTTPRoute, app).All
			return snap.Time.After(looked) && len(split) == 2 &&
				split[trafficsim.Backend{Service: app, Revision: blue}] == 0.5 &&
				split[trafficsim.Backend{Service: app + "-canary", Revision: green}] == 0.5
		}, 5*time.Second, 100*time.Millisecond, "the simulator still sends half the requests to each version")
	})

	t.Run("the release report is posted to spec.notify, again after a failed delivery", func(t *testing.T) {
		const app = "reporting"
		receiver := &notifyReceiver{}
		b.create(t, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "release-reports", Namespace: b.ns},
			StringData: map[string]string{"url": "http://" + testbed.Serve(t, receiver) + "/hooks/release"},
		})
		b.app(t, app)
		b.httpRoute(t, app)
		b.create(t, &v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: b.ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps: []v1alpha1.RolloutStep{
						{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("50%")},
						{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
					},
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
				Notify: &v1alpha1.Notify{URLSecret: v1alpha1.SecretKeySelector{Name: "release-reports", Key: "url"}},
			},
		})
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseHealthy)
		b.setTemplate(t, app, "echoserver:green", "0")
		b.waitPhase(t, app, time.Minute, v1alpha1.RolloutPhaseCompleted)

		// The first delivery gets a 500; the controller retries within 5 s.
		var ro *v1alpha1.Rollout
		accepted := assert.Eventually(t, func() bool {
			ro = b.get(t, app)
			return ro.Status.Report != nil && ro.Status.Report.NotifiedAt != nil
		}, 20*time.Second, 100*time.Millisecond, "the report was never accepted")
		require.True(t, accepted, "%d posts received; report in status: %+v", len(receiver.received()), ro.Status.Report)
		rep := ro.Status.Report
		assert.NotEmpty(t, rep.Revision)
		assert.Equal(t, int32(1), rep.NotifyAttempts, "one failed delivery")
		// Delivery is at least once: a reconcile may post again before its status write.
		posts := receiver.received()
		require.GreaterOrEqual(t, len(posts), 2, "a failed delivery, then the accepted one")
		for i, p := range posts {
			assert.Equal(t, "application/json", p.contentType)
			var msg struct {
				Rollout   string                 `json:"rollout"`
				Namespace string                 `json:"namespace"`
				Report    v1alpha1.ReleaseReport `json:"report"`
			}
			require.NoError(t, json.Unmarshal(p.body, &msg), "post %d: %s", i, p.body)
			assert.Equal(t, app, msg.Rollout)
			assert.Equal(t, b.ns, msg.Namespace)
			assert.Equal(t, v1alpha1.RolloutPhaseCompleted, msg.Report.Outcome)
			assert.Equal(t, rep.Revision, msg.Report.Revision)
			assert.Equal(t, rep.Summary, msg.Report.Summary, "post %d sends the report in status", i)
			assert.Equal(t, rep.EndedAt, msg.Report.EndedAt)
			require.Len(t, msg.Report.Steps, 2, "post %d: %s", i, p.body)
			for j, st := range msg.Report.Steps {
				assert.Equal(t, int32(j+1), st.Index)
				assert.Equal(t, "Successful", st.Verdict)
				assert.Equal(t, v1alpha1.DecidedByController, st.DecidedBy, "step %d has neither analysis nor pause", j+1)
				assert.NotNil(t, st.EndedAt)
			}
		}
	})
}
