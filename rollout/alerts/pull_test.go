package alerts

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v2Alerts is an Alertmanager /api/v2/alerts response.
const v2Alerts = `[
  {
    "annotations": {"summary": "5xx over 5%"},
    "endsAt": "2026-01-02T04:00:00.000Z",
    "fingerprint": "c0ffee",
    "receivers": [{"name": "promgate"}],
    "startsAt": "2026-01-02T03:00:00.000Z",
    "status": {"inhibitedBy": [], "silencedBy": [], "state": "active"},
    "updatedAt": "2026-01-02T03:01:00.000Z",
    "generatorURL": "http://prometheus:9090/graph",
    "labels": {"alertname": "HighErrorRate", "service": "checkout"}
  },
  {
    "annotations": {},
    "endsAt": "2026-01-02T04:00:00.000Z",
    "fingerprint": "beef",
    "receivers": [{"name": "promgate"}],
    "startsAt": "2026-01-02T03:00:00.000Z",
    "status": {"inhibitedBy": [], "silencedBy": [], "state": "unprocessed"},
    "updatedAt": "2026-01-02T03:01:00.000Z",
    "labels": {"alertname": "JustArrived"}
  }
]`

func TestFiring(t *testing.T) {
	var gotPath, gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(v2Alerts))
	}))
	defer srv.Close()

	alerts, err := Firing(context.Background(), srv.Client(), srv.URL+"/alertmanager/")
	require.NoError(t, err)
	assert.Equal(t, "/alertmanager/api/v2/alerts", gotPath)
	assert.Equal(t, "active=true&inhibited=false&silenced=false", gotQuery)
	assert.Equal(t, []Alert{{Status: StatusFiring, Labels: map[string]string{"alertname": "HighErrorRate", "service": "checkout"}}}, alerts)
}

func TestFiringErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down/api/v2/alerts":
			http.Error(rw, "cluster not ready", http.StatusServiceUnavailable)
		case "/bad/api/v2/alerts":
			_, _ = rw.Write([]byte(`{"not":"a list"}`))
		default:
			http.NotFound(rw, r)
		}
	}))
	defer srv.Close()
	tests := []struct{ name, address, want string }{
		{"server error", srv.URL + "/down", "503 Service Unavailable: \"cluster not ready\""},
		{"not a list", srv.URL + "/bad", "malformed alerts response"},
		{"no scheme", "alertmanager:9093", "must be an http(s) URL"},
		{"unparsable", "http://[::1", "invalid address"},
		{"unreachable", "http://127.0.0.1:1", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Firing(context.Background(), srv.Client(), tt.address)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.Contains(err.Error(), tt.address), "error names the address: %v", err)
		})
	}
}
