package rollout

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgate/promgate/api/v1alpha1"
)

func TestPullFindsAMatchingFiringAlert(t *testing.T) {
	body := `[{"labels":{"alertname":"Other"},"status":{"state":"active"}},
	          {"labels":{"alertname":"CheckoutErrors","severity":"page"},"status":{"state":"active"}}]`
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/api/v2/alerts", r.URL.Path)
		_, _ = w.Write([]byte(body))
	}))
	defer am.Close()

	s := reportState()
	s.ro.Spec.AbortOn = &v1alpha1.AbortOn{
		Alerts:       []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname="CheckoutErrors"`}}},
		Alertmanager: &v1alpha1.AlertmanagerPull{Address: am.URL},
	}
	require.NoError(t, s.loadGates())
	res, abort := s.pull(t.Context())
	require.NotNil(t, abort)
	assert.Equal(t, "CheckoutErrors", abort.AlertName)
	assert.Equal(t, "pull", abort.Source)
	assert.Zero(t, res.RequeueAfter, "an abort is acted on at once")

	s.ro.Spec.AbortOn.Alerts[0].Matchers = []string{`alertname="Quiet"`}
	require.NoError(t, s.loadGates())
	res, abort = s.pull(t.Context())
	assert.Nil(t, abort)
	assert.Equal(t, pullInterval, res.RequeueAfter, "asked again on the next tick")

	s.ro.Spec.AbortOn.Alertmanager.Address = "http://127.0.0.1:1"
	res, abort = s.pull(t.Context())
	assert.Nil(t, abort, "an unreachable Alertmanager aborts nothing")
	assert.Equal(t, pullInterval, res.RequeueAfter)
}

func TestGatesRejectBadInputNamingTheField(t *testing.T) {
	s := reportState()
	s.ro.Spec.AbortOn = &v1alpha1.AbortOn{Alerts: []v1alpha1.AlertMatcherSet{{Matchers: []string{`alertname=`}}}}
	assert.ErrorContains(t, s.loadGates(), "spec.abortOn.alerts[0].matchers[0]")

	s = reportState()
	s.ro.Spec.ReleaseWindow = &v1alpha1.ReleaseWindow{Schedule: "0 1 * * *", TimeZone: "Mars/Olympus"}
	s.ro.Spec.ReleaseWindow.Duration.Duration = time.Hour
	assert.ErrorContains(t, s.loadGates(), "spec.releaseWindow.timeZone")
}
