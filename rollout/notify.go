package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
)

// Delivery of a report to spec.notify: a few attempts, each bounded, further apart each
// time, so a receiver that is down never holds a worker or floods itself when it is back.
const (
	maxNotifyAttempt = 5
	notifyTimeout    = 5 * time.Second
	notifyBackoff    = 5 * time.Second
)

// notify posts the last report to spec.notify once it is saved in status, and records
// the outcome with its own optimistic-lock patch. Delivery is at least once: a POST whose
// record loses a conflict is sent again.
func (s *state) notify(ctx context.Context) (reconcile.Result, error) {
	rep := s.ro.Status.Report
	n := s.ro.Spec.Notify
	if n == nil || rep == nil || rep.NotifiedAt != nil || rep.NotifyAttempts >= maxNotifyAttempt {
		return reconcile.Result{}, nil
	}
	if last := rep.LastNotifyAttemptAt; last != nil {
		if wait := last.Add(time.Duration(rep.NotifyAttempts) * notifyBackoff).Sub(s.now); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	var sec corev1.Secret
	err := s.r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.ro.Namespace, Name: n.URLSecret.Name}, &sec)
	if err == nil {
		target := strings.TrimSpace(string(sec.Data[n.URLSecret.Key]))
		if target == "" {
			err = fmt.Errorf("key %q of Secret %s is empty", n.URLSecret.Key, n.URLSecret.Name)
		} else {
			err = post(ctx, target, s.ro, rep)
		}
	}
	s.r.Metrics.notified(s.ro, err)
	saved := s.ro.DeepCopy()
	next := s.ro.Status.Report
	res := reconcile.Result{}
	if err != nil {
		next.NotifyAttempts++
		next.LastNotifyAttemptAt = &metav1.Time{Time: s.now}
		s.event(corev1.EventTypeWarning, "NotifyFailed", "sending the release report (attempt %d of %d): %v", next.NotifyAttempts, maxNotifyAttempt, err)
		res.RequeueAfter = time.Duration(next.NotifyAttempts) * notifyBackoff
	} else {
		next.NotifiedAt = &metav1.Time{Time: s.now}
	}
	if err := s.r.Client.Status().Patch(ctx, s.ro, client.MergeFromWithOptions(saved, client.MergeFromWithOptimisticLock{})); err != nil {
		return requeueOnConflict(err, "recording the report's delivery")
	}
	return res, nil
}

func post(ctx context.Context, target string, ro *v1alpha1.Rollout, rep *v1alpha1.ReleaseReport) error {
	body, err := json.Marshal(map[string]any{"rollout": ro.Name, "namespace": ro.Namespace, "report": rep})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The URL itself is secret: say what is wrong without it.
		return errors.New("the notification URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("posting the report: %w", scrubURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("posting the report: HTTP %d", resp.StatusCode)
	}
	return nil
}

// scrubURL drops the URL (which may hold a token) from a client error.
func scrubURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
