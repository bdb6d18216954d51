package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/fixtures"
)

const (
	// alertAborts is how many webhook deliveries the benchmark times.
	alertAborts = 100
	// settle is how long a paused Rollout stays unchanged before the alert is sent.
	settle = 200 * time.Millisecond
)

// BenchmarkAlertAbortRestoresTraffic times how long traffic stays on a new version after
// Alertmanager reports a matching firing alert: from the webhook POST leaving the bench
// (as Alertmanager sends it, bearer token included) to the HTTPRoute received through a
// watch with the canary's weight at 0. A canary paused with 50% of the traffic is aborted
// by the alert, retried and aborted again, alertAborts times. Anchors on a similar bed:
// Argo Rollouts restores traffic in p99 28 ms after a manual abort patch (it takes no
// alert input); Flagger only at its next analysis interval, 10 s at the least. The target
// is p99 < 30 ms.
func BenchmarkAlertAbortRestoresTraffic(b *testing.B) {
	const app, token = "alert-abort", "bench-token"
	cl := fixtures.StartBed(b, fixtures.BedOptions{AlertToken: token})
	ns, hook := cl.Namespace, cl.Webhook
	ctx := context.Background()
	c := cl.Client

	ro := fixtures.Rollout(ns, app, v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
		Steps: []v1alpha1.RolloutStep{
			{Replicas: fixtures.Replicas("1"), Traffic: ptr.To("50%"), Pause: fixtures.Pause(0)},
			{Replicas: fixtures.Replicas("100%"), Traffic: ptr.To("100%")},
		},
		TrafficRoutings: fixtures.GatewayRouting(app),
	}})
	ro.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="CanaryErrors"`, `service="` + app + `"`}}}}
	r := startRelease(b, c, ro)
	rollout, waitFor := r.rollout, r.waitFor

	w := watchRouteWeight(b, cl.Config, ns, app+"-canary")
	r.newTemplate("echoserver:green")

	deliver := func(status string) []string {
		payload := fmt.Sprintf(`{"version":"4","receiver":"promgate","groupKey":"{}:{alertname=\"CanaryErrors\"}","status":%q,`+
			`"alerts":[{"status":%q,"labels":{"alertname":"CanaryErrors","service":%q,"severity":"page"}}]}`, status, status, app)
		req, err := http.NewRequest(http.MethodPost, "http://"+hook+fixtures.AlertWebhookPath, strings.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		// Drained to the end, so the connection is reused as Alertmanager's is.
		defer func() { _, _ = io.Copy(io.Discard, resp.Body) }()
		var body struct {
			Marked []string `json:"marked"`
			Error  string   `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("webhook answered %s (%+v, decoding: %v)", resp.Status, body, err)
		}
		return body.Marked
	}
	// Alertmanager keeps its connection to a receiver open, and the receiver reads its
	// token Secret on the first delivery: a resolved alert, which aborts nothing, opens
	// both before the timing starts.
	if marked := deliver("resolved"); len(marked) != 0 {
		b.Fatalf("a resolved alert marked %v", marked)
	}

	latencies := make([]time.Duration, 0, alertAborts)
	b.ResetTimer()
	for i := range alertAborts {
		if i > 0 {
			// The human's retry, as `kubectl patch --subresource=status` sends it.
			if err := c.Status().Patch(ctx, rollout(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"nextStepIndex":1}}`))); err != nil {
				b.Fatal(err)
			}
		}
		// An alert comes while a release waits, not in the millisecond the controller
		// writes the pause: the Rollout must also have stayed unchanged for a while.
		var version string
		var since time.Time
		waitFor("step 1 paused with 50% of the traffic", func() bool {
			ro := rollout()
			st := ro.Status
			if !(st.Phase == v1alpha1.RolloutPhasePaused && st.CurrentStepIndex == 1 &&
				st.CurrentStepState == v1alpha1.StepPaused && w.weight() == 50) {
				version = ""
				return false
			}
			if ro.ResourceVersion != version {
				version, since = ro.ResourceVersion, time.Now()
			}
			return time.Since(since) >= settle
		})
		sent := time.Now()
		if marked := deliver("firing"); !slices.Equal(marked, []string{r.key.String()}) {
			b.Fatalf("delivery %d: the webhook marked %v, want [%s]; Rollout status: %+v", i, marked, r.key, rollout().Status)
		}
		var zero time.Time
		waitFor("the canary's weight to reach 0", func() bool {
			zero = w.zeroSince(sent)
			return !zero.IsZero()
		})
		latencies = append(latencies, zero.Sub(sent))
		waitFor("the release to be aborted by the alert", func() bool {
			st := rollout().Status
			return st.Phase == v1alpha1.RolloutPhaseAborted && st.AlertAbort == nil
		})
	}
	b.StopTimer()

	p50, p99, worst := reportLatencies(b, latencies)
	fmt.Printf("alert abort: Alertmanager webhook POST sent -> HTTPRoute seen with the canary at 0%%, n=%d\n", len(latencies))
	fmt.Printf("  p50 %7.1f ms\n  p99 %7.1f ms  (target < 30 ms; Argo Rollouts after a manual abort: 28 ms; Flagger: next analysis, >= 10 s)\n  max %7.1f ms\n", p50, p99, worst)
}
