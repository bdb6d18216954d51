package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

const (
	// StatusFiring is a firing alert's status, the only one that aborts a release.
	StatusFiring = "firing"
	// SourceWebhook marks a status.alertAbort written by the webhook receiver.
	SourceWebhook = "webhook"
	// SourcePull marks a status.alertAbort written by the pull check.
	SourcePull = "pull"
	// DefaultMaxBody is the webhook body limit when none is set: 1 MiB.
	DefaultMaxBody int64 = 1 << 20
	// webhookVersion is the only Alertmanager webhook payload version understood.
	webhookVersion = "4"
)

// ErrTooLarge is returned (wrapped) by Decode when the payload exceeds the limit.
var ErrTooLarge = errors.New("payload too large")

// Alert is one alert, from the webhook payload or the v2 API.
type Alert struct {
	// Labels identify the alert; alertname is its name.
	Labels map[string]string `json:"labels"`
	// Status is "firing" or "resolved".
	Status string `json:"status"`
}

// Payload is the part of Alertmanager's webhook payload (version "4") that promgate uses.
type Payload struct {
	// Version of the payload format; only "4" is accepted.
	Version string `json:"version"`
	// GroupKey identifies the alert group.
	GroupKey string `json:"groupKey"`
	// TruncatedAlerts counts alerts left out by the receiver's max_alerts.
	TruncatedAlerts int `json:"truncatedAlerts"`
	// Status of the group: "firing" when any alert fires.
	Status string `json:"status"`
	// Receiver is the Alertmanager receiver that sent the payload.
	Receiver string `json:"receiver"`
	// Alerts are the group's alerts, firing and resolved.
	Alerts []Alert `json:"alerts"`
}

// Decode reads a webhook payload of at most limit bytes (DefaultMaxBody when limit is not
// positive). A larger payload gives an error wrapping ErrTooLarge; anything else that is
// not a version "4" payload gives an error saying why.
func Decode(r io.Reader, limit int64) (*Payload, error) {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	// One byte more than the limit tells an exact fit from an oversized body.
	n := limit
	if n < math.MaxInt64 {
		n++
	}
	body, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("malformed JSON payload: %w", err)
	}
	if p.Version != webhookVersion {
		return nil, fmt.Errorf("unsupported payload version %q, want %q", p.Version, webhookVersion)
	}
	return &p, nil
}

// NewAlertAbort is the status.alertAbort recording alert a, learnt from source at now.
func NewAlertAbort(a Alert, source string, now time.Time) *v1alpha1.AlertAbort {
	return &v1alpha1.AlertAbort{
		AlertName: a.Labels["alertname"],
		// A copy, so the status never aliases a map the caller may reuse.
		Labels:     maps.Clone(a.Labels),
		Source:     source,
		ReceivedAt: metav1.NewTime(now),
	}
}
