package alerts

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
)

// validPayload is a webhook body as Alertmanager sends it.
const validPayload = `{
  "version": "4",
  "groupKey": "{}:{alertname=\"HighErrorRate\"}",
  "truncatedAlerts": 0,
  "status": "firing",
  "receiver": "promgate",
  "groupLabels": {"alertname": "HighErrorRate"},
  "commonLabels": {"alertname": "HighErrorRate", "service": "checkout"},
  "commonAnnotations": {"summary": "5xx over 5%"},
  "externalURL": "http://alertmanager:9093",
  "alerts": [
    {
      "status": "firing",
      "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
      "annotations": {"summary": "5xx over 5%"},
      "startsAt": "2026-01-02T03:04:05.678Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph",
      "fingerprint": "c0ffee"
    },
    {
      "status": "resolved",
      "labels": {"alertname": "HighErrorRate", "service": "cart"},
      "startsAt": "2026-01-02T03:00:00Z",
      "endsAt": "2026-01-02T03:04:00Z"
    }
  ]
}`

func TestDecode(t *testing.T) {
	p, err := Decode(strings.NewReader(validPayload), 0)
	require.NoError(t, err)
	assert.Equal(t, "4", p.Version)
	assert.Equal(t, "promgate", p.Receiver)
	require.Len(t, p.Alerts, 2)
	assert.Equal(t, Alert{Status: "firing", Labels: map[string]string{"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"}}, p.Alerts[0])
	assert.Equal(t, "resolved", p.Alerts[1].Status)
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		limit    int64
		tooLarge bool
		want     string
	}{
		{"empty", "", 0, false, "malformed JSON"},
		{"null", "null", 0, false, `unsupported payload version ""`},
		{"truncated", validPayload[:len(validPayload)/2], 0, false, "malformed JSON"},
		{"trailing garbage", `{"version":"4"} x`, 0, false, "malformed JSON"},
		{"version 3", `{"version":"3","alerts":[]}`, 0, false, `unsupported payload version "3", want "4"`},
		{"labels not strings", `{"version":"4","alerts":[{"status":"firing","labels":{"a":1}}]}`, 0, false, "malformed JSON"},
		{"huge number", `{"version":"4","truncatedAlerts":1e400}`, 0, false, "malformed JSON"},
		{"over the limit", validPayload, 100, true, "payload too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode(strings.NewReader(tt.body), tt.limit)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Equal(t, tt.tooLarge, errors.Is(err, ErrTooLarge))
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeExactLimit(t *testing.T) {
	body := `{"version":"4"}`
	_, err := Decode(strings.NewReader(body), int64(len(body)))
	require.NoError(t, err)
	_, err = Decode(strings.NewReader(body), int64(len(body)-1))
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestNewAlertAbort(t *testing.T) {
	labels := map[string]string{"alertname": "HighErrorRate", "service": "checkout"}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := NewAlertAbort(Alert{Labels: labels, Status: StatusFiring}, SourcePull, now)
	assert.Equal(t, "HighErrorRate", got.AlertName)
	assert.Equal(t, SourcePull, got.Source)
	assert.True(t, got.ReceivedAt.Time.Equal(now))
	labels["service"] = "changed"
	assert.Equal(t, "checkout", got.Labels["service"], "status must not alias the alert's labels")
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(validPayload))
	f.Add([]byte(""))
	f.Add([]byte(validPayload[:len(validPayload)/3]))
	f.Add([]byte(`{"version":"4","truncatedAlerts":99999999999999999999999999,"alerts":[]}`))
	f.Add([]byte(`{"version":"4","truncatedAlerts":-1e308,"alerts":[{"status":"firing","labels":{"alertname":"x"}}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":null},null]}`))
	f.Add(bytes.Repeat([]byte("["), 5000))
	matchers, err := ParseMatchers([]v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname=~"High.*"`, `severity!="info"`}}}, field.NewPath("spec", "abortOn", "alerts"))
	require.NoError(f, err)
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(bytes.NewReader(data), limit)
		if len(data) > limit {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d bytes over a %d limit: got %v, want ErrTooLarge", len(data), limit, err)
			}
			return
		}
		if errors.Is(err, ErrTooLarge) {
			t.Fatalf("%d bytes within a %d limit reported too large", len(data), limit)
		}
		if err != nil {
			return
		}
		if p == nil || p.Version != "4" {
			t.Fatalf("accepted payload %+v", p)
		}
		for _, a := range p.Alerts {
			matchers.Match(a.Labels)
			NewAlertAbort(a, SourceWebhook, time.Time{})
		}
	})
}
