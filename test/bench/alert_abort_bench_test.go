package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
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
	cl := testbed.StartCluster(b)
	const ns, app, token = "default", "alert-abort", "bench-token"
	ctx := context.Background()
	c := cl.Client
	// Before the controller starts: the receiver caches a missing Secret as an error.
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "alert-token", Namespace: ns},
		StringData: map[string]string{"token": token},
	}); err != nil {
		b.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	hook := "127.0.0.1:" + strconv.Itoa(port)
	testbed.StartPromgate(b, cl.ControlPlane,
		"--alert-webhook-bind-address="+hook, "--alert-webhook-token-secret="+ns+"/alert-token")

	labels := map[string]string{"app": app}
	port80 := gatewayv1.PortNumber(80)
	for _, o := range []client.Object{
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "echoserver:blue"}}},
				},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		&gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gateway"}}},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: app, Port: &port80},
				}}}}},
			},
		},
		&v1alpha1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: v1alpha1.RolloutSpec{
				WorkloadRef: v1alpha1.WorkloadRef{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
				Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.ReleaseStrategy{
					Steps: []v1alpha1.RolloutStep{
						{Replicas: ptr.To(intstr.FromInt32(1)), Traffic: ptr.To("50%"), Pause: &v1alpha1.RolloutPause{}},
						{Replicas: ptr.To(intstr.FromString("100%")), Traffic: ptr.To("100%")},
					},
					TrafficRoutings: []v1alpha1.TrafficRouting{{Service: app, Gateway: &v1alpha1.GatewayTrafficRouting{HTTPRouteName: app}}},
				}},
				AbortOn: &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="CanaryErrors"`, `service="` + app + `"`}}}},
			},
		},
	} {
		if err := c.Create(ctx, o); err != nil {
			b.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	key := client.ObjectKey{Namespace: ns, Name: app}
	rollout := func() *v1alpha1.Rollout {
		var ro v1alpha1.Rollout
		if err := c.Get(ctx, key, &ro); err != nil {
			b.Fatal(err)
		}
		return &ro
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("timed out waiting for %s; Rollout status: %+v", what, rollout().Status)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the Rollout to adopt the Deployment", func() bool { return rollout().Status.Phase == v1alpha1.RolloutPhaseHealthy })

	w := watchRouteWeight(b, cl.Config, ns, app+"-canary")
	// Right after adoption the Deployment controller is still writing the Deployment.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var d appsv1.Deployment
		if err := c.Get(ctx, key, &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "echoserver:green"
		return c.Update(ctx, &d)
	}); err != nil {
		b.Fatal(err)
	}

	deliver := func(status string) []string {
		payload := fmt.Sprintf(`{"version":"4","receiver":"promgate","groupKey":"{}:{alertname=\"CanaryErrors\"}","status":%q,`+
			`"alerts":[{"status":%q,"labels":{"alertname":"CanaryErrors","service":%q,"severity":"page"}}]}`, status, status, app)
		req, err := http.NewRequest(http.MethodPost, "http://"+hook+"/alertmanager", strings.NewReader(payload))
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
		if marked := deliver("firing"); !slices.Equal(marked, []string{key.String()}) {
			b.Fatalf("delivery %d: the webhook marked %v, want [%s]; Rollout status: %+v", i, marked, key, rollout().Status)
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

	slices.Sort(latencies)
	ms := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(latencies)))) - 1
		return float64(latencies[max(i, 0)].Microseconds()) / 1000
	}
	p50, p99, worst := ms(0.50), ms(0.99), ms(1)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(worst, "max-ms")
	b.ReportMetric(float64(len(latencies)), "aborts")
	fmt.Printf("alert abort: Alertmanager webhook POST sent -> HTTPRoute seen with the canary at 0%%, n=%d\n", len(latencies))
	fmt.Printf("  p50 %7.1f ms\n  p99 %7.1f ms  (target < 30 ms; Argo Rollouts after a manual abort: 28 ms; Flagger: next analysis, >= 10 s)\n  max %7.1f ms\n", p50, p99, worst)
}

// routeWeight follows the canary's weight in the HTTPRoutes through a watch and stamps
// each drop to 0 with the time it was received.
type routeWeight struct {
	mu     sync.Mutex
	canary int32
	zeroAt time.Time
}

func watchRouteWeight(b *testing.B, cfg *rest.Config, ns, canaryService string) *routeWeight {
	b.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testbed.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	routes, err := wc.Watch(ctx, &gatewayv1.HTTPRouteList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	w := &routeWeight{}
	go func() {
		for ev := range routes.ResultChan() {
			at := time.Now()
			route, ok := ev.Object.(*gatewayv1.HTTPRoute)
			if !ok {
				continue
			}
			weight := canaryWeight(route, canaryService)
			w.mu.Lock()
			if weight == 0 && w.canary > 0 {
				w.zeroAt = at
			}
			w.canary = weight
			w.mu.Unlock()
		}
	}()
	return w
}

// weight is the canary's weight in the HTTPRoute last received.
func (w *routeWeight) weight() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.canary
}

// zeroSince is when the canary's weight was last seen dropping to 0, if after t; else zero.
func (w *routeWeight) zeroSince(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.zeroAt.After(t) {
		return w.zeroAt
	}
	return time.Time{}
}
