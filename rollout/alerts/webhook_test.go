package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/promgate/promgate/api/v1alpha1"
)

const testToken = "s3cret"

var (
	tokenSecretKey = types.NamespacedName{Namespace: "promgate-system", Name: "alert-webhook"}
	start          = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func tokenSecret(token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: tokenSecretKey.Namespace, Name: tokenSecretKey.Name},
		// The trailing newline is what `echo token | kubectl create secret` leaves.
		Data: map[string][]byte{"token": []byte(token + "\n")},
	}
}

func rollout(ns, name string, phase v1alpha1.RolloutPhase, matcherSets ...[]string) *v1alpha1.Rollout {
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status:     v1alpha1.RolloutStatus{Phase: phase},
	}
	if len(matcherSets) > 0 {
		ro.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: sets(matcherSets...)}
	}
	return ro
}

func newWebhook(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) (*Webhook, client.Client, *clock) {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, v1alpha1.AddToScheme(scheme))
	b := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.Rollout{}).WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	clk := &clock{now: start}
	w := &Webhook{Client: c, APIReader: c, TokenSecret: tokenSecretKey, Now: clk.Now}
	return w, c, clk
}

func post(w http.Handler, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/alerts", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, req)
	return rec
}

func marked(t *testing.T, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var resp response
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
	require.NotNil(t, resp.Marked, "marked is a list, never null")
	return resp.Marked
}

func get(t *testing.T, c client.Client, ns, name string) *v1alpha1.Rollout {
	t.Helper()
	var ro v1alpha1.Rollout
	require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &ro))
	return &ro
}

// payload builds a v4 webhook body from alerts.
func payload(t *testing.T, alerts ...Alert) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "promgate", "alerts": alerts})
	require.NoError(t, err)
	return string(body)
}

func firing(labels ...string) Alert {
	a := Alert{Status: StatusFiring, Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		a.Labels[labels[i]] = labels[i+1]
	}
	return a
}

func resolved(labels ...string) Alert {
	a := firing(labels...)
	a.Status = "resolved"
	return a
}

func TestWebhookMethodNotAllowed(t *testing.T) {
	w, _, _ := newWebhook(t, nil, tokenSecret(testToken))
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req := httptest.NewRequest(method, "/alerts", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, method)
		assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"), method)
	}
}

func TestWebhookAuthentication(t *testing.T) {
	w, _, _ := newWebhook(t, nil, tokenSecret(testToken))
	body := payload(t)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", "Bearer s3c", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"valid", "Bearer " + testToken, http.StatusOK},
		{"scheme is case-insensitive", "bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/alerts", strings.NewReader(body))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			w.ServeHTTP(rec, req)
			assert.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want == http.StatusUnauthorized {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
}

func TestWebhookTokenSecretUnavailable(t *testing.T) {
	t.Run("missing Secret", func(t *testing.T) {
		w, _, _ := newWebhook(t, nil)
		rec := post(w, testToken, payload(t))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	})
	t.Run("missing key", func(t *testing.T) {
		w, _, _ := newWebhook(t, nil, tokenSecret(testToken))
		w.TokenKey = "other"
		rec := post(w, testToken, payload(t))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	})
	t.Run("empty token never authenticates an empty header", func(t *testing.T) {
		w, _, _ := newWebhook(t, nil, tokenSecret(" "))
		req := httptest.NewRequest(http.MethodPost, "/alerts", strings.NewReader(payload(t)))
		req.Header.Set("Authorization", "Bearer ")
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	})
}

func TestWebhookSecretRotation(t *testing.T) {
	w, c, clk := newWebhook(t, nil, tokenSecret("old"))
	ctx := context.Background()
	require.Equal(t, http.StatusOK, post(w, "old", payload(t)).Code)

	s := tokenSecret("new")
	require.NoError(t, c.Update(ctx, s))
	clk.advance(5 * time.Second)
	assert.Equal(t, http.StatusOK, post(w, "old", payload(t)).Code, "the Secret is re-read at most every 10s")
	assert.Equal(t, http.StatusUnauthorized, post(w, "new", payload(t)).Code)

	clk.advance(6 * time.Second)
	assert.Equal(t, http.StatusOK, post(w, "new", payload(t)).Code, "rotation takes effect after 10s")
	assert.Equal(t, http.StatusUnauthorized, post(w, "old", payload(t)).Code)

	require.NoError(t, c.Delete(ctx, s))
	clk.advance(11 * time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, post(w, "new", payload(t)).Code, "a deleted Secret authenticates nobody")
}

func TestWebhookTooLarge(t *testing.T) {
	w, _, _ := newWebhook(t, nil, tokenSecret(testToken))
	w.MaxBody = 64
	body := payload(t, firing("alertname", strings.Repeat("x", 100)))

	rec := post(w, testToken, body)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)

	// Without a Content-Length (chunked), the limit still holds while reading.
	req := httptest.NewRequest(http.MethodPost, "/alerts", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec = httptest.NewRecorder()
	w.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Contains(t, rec.Body.String(), "payload too large")
}

func TestWebhookBadRequest(t *testing.T) {
	w, _, _ := newWebhook(t, nil, tokenSecret(testToken))
	tests := []struct{ name, body, want string }{
		{"not JSON", "alert!", "malformed JSON"},
		{"truncated", validPayload[:40], "malformed JSON"},
		{"wrong version", `{"version":"3","alerts":[]}`, `unsupported payload version "3", want "4"`},
		{"no version", `{"alerts":[]}`, `unsupported payload version ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(w, testToken, tt.body)
			assert.Equal(t, http.StatusBadRequest, rec.Code)
			assert.Contains(t, rec.Body.String(), tt.want)
		})
	}
}

func TestWebhookMarksMatchingReleases(t *testing.T) {
	alreadyRecorded := &v1alpha1.AlertAbort{AlertName: "Earlier", Source: SourcePull, ReceivedAt: metav1.NewTime(start.Add(-time.Hour))}
	already := rollout("shop", "already", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`})
	already.Status.AlertAbort = alreadyRecorded
	w, c, _ := newWebhook(t, nil,
		tokenSecret(testToken),
		rollout("shop", "checkout", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`, `service="checkout"`}),
		rollout("ops", "paused", v1alpha1.RolloutPhasePaused, []string{`alertname="Nope"`}, []string{`severity=~"crit.*"`}),
		rollout("shop", "cart", v1alpha1.RolloutPhaseProgressing, []string{`service="cart"`}),
		rollout("shop", "aborted", v1alpha1.RolloutPhaseAborted, []string{`alertname="HighErrorRate"`}),
		rollout("shop", "completed", v1alpha1.RolloutPhaseCompleted, []string{`alertname="HighErrorRate"`}),
		rollout("shop", "healthy", v1alpha1.RolloutPhaseHealthy, []string{`alertname="HighErrorRate"`}),
		rollout("shop", "other", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighLatency"`}),
		rollout("shop", "bad", v1alpha1.RolloutPhaseProgressing, []string{`alertname=HighErrorRate`}),
		rollout("shop", "plain", v1alpha1.RolloutPhaseProgressing),
		already,
	)

	rec := post(w, testToken, payload(t,
		resolved("alertname", "HighErrorRate", "service", "cart"),
		firing("alertname", "HighErrorRate", "service", "checkout", "severity", "critical"),
	))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.ElementsMatch(t, []string{"shop/checkout", "ops/paused"}, marked(t, rec))

	want := &v1alpha1.AlertAbort{
		AlertName:  "HighErrorRate",
		Labels:     map[string]string{"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
		Source:     SourceWebhook,
		ReceivedAt: metav1.NewTime(start),
	}
	for _, key := range []types.NamespacedName{{Namespace: "shop", Name: "checkout"}, {Namespace: "ops", Name: "paused"}} {
		got := get(t, c, key.Namespace, key.Name).Status.AlertAbort
		require.NotNil(t, got, key)
		assert.Equal(t, want.AlertName, got.AlertName)
		assert.Equal(t, want.Labels, got.Labels)
		assert.Equal(t, want.Source, got.Source)
		assert.True(t, got.ReceivedAt.Equal(&want.ReceivedAt), "received at %v", got.ReceivedAt)
	}
	for _, name := range []string{"cart", "aborted", "completed", "healthy", "other", "bad", "plain"} {
		assert.Nil(t, get(t, c, "shop", name).Status.AlertAbort, name)
	}
	assert.Equal(t, "Earlier", get(t, c, "shop", "already").Status.AlertAbort.AlertName, "a recorded alert is never replaced")
	assert.Equal(t, v1alpha1.RolloutPhaseAborted, get(t, c, "shop", "aborted").Status.Phase)
}

func TestWebhookRepeatIsIdempotent(t *testing.T) {
	w, c, clk := newWebhook(t, nil, tokenSecret(testToken),
		rollout("shop", "checkout", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`}))
	body := payload(t, firing("alertname", "HighErrorRate"), firing("alertname", "HighErrorRate", "pod", "b"))

	rec := post(w, testToken, body)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, []string{"shop/checkout"}, marked(t, rec), "one mark per Rollout, however many alerts match")
	first := get(t, c, "shop", "checkout")

	clk.advance(time.Minute)
	rec = post(w, testToken, body)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, marked(t, rec))
	again := get(t, c, "shop", "checkout")
	assert.Equal(t, first.ResourceVersion, again.ResourceVersion, "nothing is written on a repeat")
	assert.Equal(t, first.Status.AlertAbort, again.Status.AlertAbort)
}

func TestWebhookResolvedChangesNothing(t *testing.T) {
	aborted := rollout("shop", "checkout", v1alpha1.RolloutPhaseAborted, []string{`alertname="HighErrorRate"`})
	aborted.Status.AbortReason = "alert HighErrorRate"
	progressing := rollout("shop", "cart", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`})
	w, c, _ := newWebhook(t, nil, tokenSecret(testToken), aborted, progressing)
	before := []*v1alpha1.Rollout{get(t, c, "shop", "checkout"), get(t, c, "shop", "cart")}

	rec := post(w, testToken, payload(t, resolved("alertname", "HighErrorRate")))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, marked(t, rec))
	assert.Equal(t, before, []*v1alpha1.Rollout{get(t, c, "shop", "checkout"), get(t, c, "shop", "cart")})
}

func TestWebhookConflictIsReRead(t *testing.T) {
	conflict := func(c client.Client, ro client.Object) error {
		return apierrors.NewConflict(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "rollouts"}, ro.GetName(), errors.New("modified"))
	}

	t.Run("marked after a conflict", func(t *testing.T) {
		calls := 0
		funcs := &interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			calls++
			if calls == 1 {
				return conflict(c, obj)
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}
		w, c, _ := newWebhook(t, funcs, tokenSecret(testToken),
			rollout("shop", "checkout", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`}))
		rec := post(w, testToken, payload(t, firing("alertname", "HighErrorRate")))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, []string{"shop/checkout"}, marked(t, rec))
		assert.Equal(t, 2, calls)
		assert.NotNil(t, get(t, c, "shop", "checkout").Status.AlertAbort)
	})

	t.Run("the controller aborted meanwhile", func(t *testing.T) {
		calls := 0
		funcs := &interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			calls++
			if calls == 1 {
				// The controller's write lands first; the patch's resourceVersion is then
				// stale and the real optimistic lock refuses it.
				var cur v1alpha1.Rollout
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &cur); err != nil {
					return err
				}
				cur.Status.Phase = v1alpha1.RolloutPhaseAborted
				if err := c.Status().Update(ctx, &cur); err != nil {
					return err
				}
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}}
		w, c, _ := newWebhook(t, funcs, tokenSecret(testToken),
			rollout("shop", "checkout", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`}))
		rec := post(w, testToken, payload(t, firing("alertname", "HighErrorRate")))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Empty(t, marked(t, rec))
		assert.Equal(t, 1, calls, "only the stale patch was attempted")
		got := get(t, c, "shop", "checkout")
		assert.Nil(t, got.Status.AlertAbort)
		assert.Equal(t, v1alpha1.RolloutPhaseAborted, got.Status.Phase)
	})
}

func TestWebhookPatchFailureAsksForRetry(t *testing.T) {
	funcs := &interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
		if obj.GetName() == "broken" {
			return errors.New("etcd is down")
		}
		return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
	}}
	w, c, _ := newWebhook(t, funcs, tokenSecret(testToken),
		rollout("shop", "broken", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`}),
		rollout("shop", "checkout", v1alpha1.RolloutPhaseProgressing, []string{`alertname="HighErrorRate"`}))
	rec := post(w, testToken, payload(t, firing("alertname", "HighErrorRate")))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Equal(t, []string{"shop/checkout"}, marked(t, rec), "the other Rollout is still marked")
	assert.NotContains(t, rec.Body.String(), "etcd", "internal errors stay in the log")
	assert.NotNil(t, get(t, c, "shop", "checkout").Status.AlertAbort)
}

// TestWebhookSendsTrafficToStableAtOnce: the receiver restores the stable version's
// traffic itself, in the same request, before the controller's pass.
func TestWebhookSendsTrafficToStableAtOnce(t *testing.T) {
	ro := rollout("shop", "web", v1alpha1.RolloutPhasePaused, []string{`alertname="HighErrorRate"`})
	ro.UID = "rollout-uid"
	ro.Spec.Strategy.Canary = &v1alpha1.ReleaseStrategy{
		Steps:           []v1alpha1.RolloutStep{{}},
		TrafficRoutings: []v1alpha1.TrafficRouting{{Service: "web"}},
	}
	ro.Status.StableRevision, ro.Status.CanaryRevision = "blue", "green"
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web", "pod-template-hash": "green"}},
	}
	// The Service was switched to green (100% at the last step) with its original saved.
	svc.Annotations = map[string]string{"promgate.io/original-selector": `{"app":"web"}`}
	w, c, _ := newWebhook(t, nil, tokenSecret(testToken), ro, svc)

	rec := post(w, testToken, payload(t, firing("alertname", "HighErrorRate")))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{"shop/web"}, marked(t, rec))
	var got corev1.Service
	require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "web"}, &got))
	assert.Equal(t, map[string]string{"app": "web", "pod-template-hash": "blue"}, got.Spec.Selector, "all traffic on the stable version")
	assert.NotNil(t, get(t, c, "shop", "web").Status.AlertAbort, "and the abort recorded for the controller")
}
