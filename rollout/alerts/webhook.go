package alerts

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/traffic"
)

const (
	// tokenTTL is how long a read of the token Secret is trusted: rotation takes effect
	// within it, and unauthenticated requests cannot make every request an API read.
	tokenTTL = 10 * time.Second
	// defaultTokenKey is the Secret key holding the token when TokenKey is empty.
	defaultTokenKey = "token"
)

// Webhook receives Alertmanager webhooks and records matching firing alerts in Rollouts.
type Webhook struct {
	// Client lists Rollouts (from the cache) and patches their status.
	Client client.Client
	// APIReader reads the token Secret and each matching Rollout uncached (the manager's
	// API reader): a decision on a stale Rollout could drop an alert Alertmanager will
	// not send again for hours.
	APIReader client.Reader
	// TokenSecret is the Secret holding the bearer token Alertmanager sends.
	TokenSecret types.NamespacedName
	// TokenKey is the token's key in TokenSecret; default "token".
	TokenKey string
	// MaxBody is the largest payload accepted; default DefaultMaxBody.
	MaxBody int64
	// Now is the clock for received times and token refreshes; default time.Now.
	Now func() time.Time

	// mu guards the token cache below.
	mu          sync.Mutex
	token       string
	tokenErr    error
	tokenReadAt time.Time
}

// response is the JSON body of a handled payload.
type response struct {
	// Marked are the Rollouts ("namespace/name") whose status now records an alert.
	Marked []string `json:"marked"`
	// Error says why some alerts could not be recorded; Alertmanager then retries.
	Error string `json:"error,omitempty"`
}

// ServeHTTP handles one Alertmanager webhook delivery.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := logf.FromContext(ctx).WithValues("remote", r.RemoteAddr)
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "only POST is allowed", http.StatusMethodNotAllowed)
		return
	}
	token, err := w.currentToken(ctx)
	if err != nil {
		log.Error(err, "cannot authenticate alert webhook: token Secret unavailable")
		http.Error(rw, "webhook token unavailable", http.StatusServiceUnavailable)
		return
	}
	if !authorized(r.Header.Get("Authorization"), token) {
		log.Info("rejected alert webhook without a valid bearer token")
		rw.Header().Set("WWW-Authenticate", `Bearer realm="promgate"`)
		http.Error(rw, "missing or invalid bearer token", http.StatusUnauthorized)
		return
	}
	limit := w.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	// A declared length over the limit is refused before reading anything.
	if r.ContentLength > limit {
		http.Error(rw, fmt.Sprintf("payload over %d bytes", limit), http.StatusRequestEntityTooLarge)
		return
	}
	p, err := Decode(r.Body, limit)
	switch {
	case errors.Is(err, ErrTooLarge):
		log.Info("rejected oversized alert webhook", "limit", limit)
		http.Error(rw, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		log.Info("rejected malformed alert webhook", "reason", err.Error())
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	log = log.WithValues("receiver", p.Receiver, "groupKey", p.GroupKey)
	if p.TruncatedAlerts > 0 {
		// The pull check (spec.abortOn.alertmanager) is what catches a truncated alert.
		log.Info("Alertmanager left alerts out of this webhook (receiver max_alerts)", "truncatedAlerts", p.TruncatedAlerts)
	}
	marked, err := w.apply(logf.IntoContext(ctx, log), p)
	resp := response{Marked: marked}
	code := http.StatusOK
	if err != nil {
		// A 5xx makes Alertmanager deliver again, which is safe: recording is idempotent.
		log.Error(err, "could not record every matching alert")
		resp.Error = "could not record every matching alert; retry"
		code = http.StatusInternalServerError
	}
	writeJSON(rw, log, code, resp)
}

// apply records each firing alert in the Rollouts it matches and returns those marked.
func (w *Webhook) apply(ctx context.Context, p *Payload) ([]string, error) {
	log := logf.FromContext(ctx)
	marked := []string{}
	var firing []Alert
	for _, a := range p.Alerts {
		if a.Status != StatusFiring {
			// A resolved alert never resumes a release: once aborted, a human decides. Not
			// at Info: a storm of deliveries would flood the log with non-decisions.
			log.V(1).Info("ignoring alert that is not firing", "alert", a.Labels["alertname"], "labels", a.Labels, "status", a.Status)
			continue
		}
		firing = append(firing, a)
	}
	if len(firing) == 0 {
		return marked, nil
	}
	var list v1alpha1.RolloutList
	if err := w.Client.List(ctx, &list); err != nil {
		return marked, fmt.Errorf("listing Rollouts: %w", err)
	}
	var errs []error
	for i := range list.Items {
		ro := &list.Items[i]
		sets, ok := rolloutMatchers(log, ro)
		if !ok {
			continue
		}
		for _, a := range firing {
			alog := log.WithValues("alert", a.Labels["alertname"], "labels", a.Labels, "rollout", client.ObjectKeyFromObject(ro))
			if !sets.Match(a.Labels) {
				alog.V(1).Info("alert does not match the Rollout's abortOn matchers")
				continue
			}
			ok, err := w.mark(logf.IntoContext(ctx, alog), ro, a)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				marked = append(marked, client.ObjectKeyFromObject(ro).String())
			}
			// The first matching alert decides: the Rollout is now marked, or it has
			// nothing another alert could abort.
			break
		}
	}
	return marked, errors.Join(errs...)
}

// rolloutMatchers parses ro's abortOn matchers; false when it has none or they are invalid.
func rolloutMatchers(log logr.Logger, ro *v1alpha1.Rollout) (MatcherSets, bool) {
	if ro.Spec.AbortOn == nil || len(ro.Spec.AbortOn.Alerts) == 0 {
		return nil, false
	}
	sets, err := ParseMatchers(ro.Spec.AbortOn.Alerts, field.NewPath("spec", "abortOn", "alerts"))
	if err != nil {
		// The Rollout controller reports the bad field in the Rollout's Valid condition.
		log.Error(err, "skipping Rollout whose abortOn matchers are invalid", "rollout", client.ObjectKeyFromObject(ro))
		return nil, false
	}
	return sets, true
}

// mark records alert a in ro's status.alertAbort when ro has a release in progress and no
// alert recorded yet, and reports whether it did. The patch carries the resourceVersion,
// so a concurrent change (the controller aborting, the pull check recording another
// alert) is re-read and decided again rather than overwritten.
func (w *Webhook) mark(ctx context.Context, ro *v1alpha1.Rollout, a Alert) (bool, error) {
	log := logf.FromContext(ctx)
	key := client.ObjectKeyFromObject(ro)
	marked := false
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		latest := &v1alpha1.Rollout{}
		if err := w.APIReader.Get(ctx, key, latest); err != nil {
			return err
		}
		sets, ok := rolloutMatchers(log, latest)
		if !ok || !sets.Match(a.Labels) {
			log.Info("alert no longer matches the Rollout after its spec changed")
			return nil
		}
		if latest.Status.AlertAbort != nil {
			log.Info("alert matches but the Rollout already records an alert abort; nothing to do",
				"recordedAlert", latest.Status.AlertAbort.AlertName, "recordedSource", latest.Status.AlertAbort.Source)
			return nil
		}
		if phase := latest.Status.Phase; phase != v1alpha1.RolloutPhaseProgressing && phase != v1alpha1.RolloutPhasePaused {
			log.Info("alert matches but the Rollout has no release in progress; nothing to abort", "phase", phase)
			return nil
		}
		// Traffic first, in this one write, as an abort's first act: the controller's
		// pass through status would add a write and two watch hops before the bad
		// version stops serving. Failing safe, traffic at 0% is where an unrecorded
		// abort leaves the release until Alertmanager sends the alert again.
		if err := stableTraffic(ctx, w.Client, w.APIReader, latest); err != nil {
			return err
		}
		patched := latest.DeepCopy()
		patched.Status.AlertAbort = NewAlertAbort(a, SourceWebhook, w.now())
		patch := client.MergeFromWithOptions(latest, client.MergeFromWithOptimisticLock{})
		if err := w.Client.Status().Patch(ctx, patched, patch); err != nil {
			return err
		}
		log.Info("recorded firing alert in the Rollout's status; its controller aborts the release", "phase", latest.Status.Phase)
		marked = true
		return nil
	})
	if apierrors.IsNotFound(err) {
		log.Info("Rollout was deleted; nothing to abort")
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording alert %q in Rollout %s: %w", a.Labels["alertname"], key, err)
	}
	return marked, nil
}

// currentToken is the bearer token, read from the Secret at most once per tokenTTL.
func (w *Webhook) currentToken(ctx context.Context) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	// A negative age (the clock went back) forces a read rather than trusting the cache.
	if age := now.Sub(w.tokenReadAt); !w.tokenReadAt.IsZero() && age >= 0 && age < tokenTTL {
		return w.token, w.tokenErr
	}
	token, err := w.readToken(ctx)
	// A read cut short by the client going away says nothing about the Secret.
	if ctx.Err() != nil {
		return "", err
	}
	w.token, w.tokenErr, w.tokenReadAt = token, err, now
	return token, err
}

func (w *Webhook) readToken(ctx context.Context) (string, error) {
	key := w.TokenKey
	if key == "" {
		key = defaultTokenKey
	}
	var s corev1.Secret
	if err := w.APIReader.Get(ctx, w.TokenSecret, &s); err != nil {
		return "", fmt.Errorf("reading token Secret %s: %w", w.TokenSecret, err)
	}
	// Alertmanager trims a credentials file, and Secrets made with echo end in a newline.
	token := strings.TrimSpace(string(s.Data[key]))
	if token == "" {
		// An empty token would let an empty Authorization header through.
		return "", fmt.Errorf("token Secret %s has no non-empty key %q", w.TokenSecret, key)
	}
	return token, nil
}

func (w *Webhook) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// authorized reports whether header is "Bearer <token>". Both sides are hashed first so
// the constant-time comparison does not leak the token's length either.
func authorized(header, token string) bool {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	want := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func writeJSON(rw http.ResponseWriter, log logr.Logger, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		log.Error(err, "encoding alert webhook response")
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	if _, err := rw.Write(append(body, '\n')); err != nil {
		log.V(1).Info("writing alert webhook response", "error", err.Error())
	}
}

// stableTraffic sends all of ro's traffic to its stable revision, as an abort does. It
// never waits for EndpointSlices: traffic back on the stable version goes to the pods
// that served it all along.
func stableTraffic(ctx context.Context, c client.Client, reader client.Reader, ro *v1alpha1.Rollout) error {
	if ro.Status.StableRevision == "" || ro.Status.CanaryRevision == "" {
		return nil
	}
	for _, rt := range traffic.ForRollout(c, traffic.SliceEndpoints{Reader: reader}, ro) {
		if err := rt.Route(ctx, 0, nil); err != nil {
			return fmt.Errorf("sending the traffic of Rollout %s back to the stable version: %w", ro.Name, err)
		}
	}
	return nil
}
