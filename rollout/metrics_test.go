package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// TestMetricsFollowStatus: each Rollout has one info series, the step it is at, when a
// release's step began while one is in progress, and its window's state; all go with it.
func TestMetricsFollowStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	started := time.Unix(1700000000, 250000000)
	ro := &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "checkout"},
		Spec: v1alpha1.RolloutSpec{
			Strategy:      v1alpha1.RolloutStrategy{BlueGreen: &v1alpha1.ReleaseStrategy{}},
			ReleaseWindow: &v1alpha1.ReleaseWindow{Schedule: "0 1 * * *"},
		},
		Status: v1alpha1.RolloutStatus{
			Phase: v1alpha1.RolloutPhasePaused, CurrentStepIndex: 2, CurrentStepState: v1alpha1.StepPaused,
			StepStartedAt: &metav1.MicroTime{Time: started}, Window: &v1alpha1.WindowStatus{Open: true},
		},
	}
	names := []string{"promgate_rollout_info", "promgate_rollout_step", "promgate_rollout_step_started_timestamp_seconds", "promgate_rollout_release_window_open"}
	m.observe(ro)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP promgate_rollout_info Always 1: each Rollout's strategy, phase and step state, as its status last written says.
# TYPE promgate_rollout_info gauge
promgate_rollout_info{namespace="shop",phase="Paused",rollout="checkout",step_state="StepPaused",strategy="blueGreen"} 1
# HELP promgate_rollout_release_window_open 1 while a Rollout's release window is open, 0 while it is closed; only Rollouts with a window.
# TYPE promgate_rollout_release_window_open gauge
promgate_rollout_release_window_open{namespace="shop",rollout="checkout"} 1
# HELP promgate_rollout_step The step each Rollout is at (1-based; 0 before its first release).
# TYPE promgate_rollout_step gauge
promgate_rollout_step{namespace="shop",rollout="checkout"} 2
# HELP promgate_rollout_step_started_timestamp_seconds When the current step state of a release in progress (Progressing or Paused) began, in Unix seconds.
# TYPE promgate_rollout_step_started_timestamp_seconds gauge
promgate_rollout_step_started_timestamp_seconds{namespace="shop",rollout="checkout"} 1.70000000025e+09
`), names...))

	ro.Status.Phase, ro.Status.CurrentStepState, ro.Status.CurrentStepIndex = v1alpha1.RolloutPhaseCompleted, v1alpha1.StepCompleted, 3
	ro.Spec.ReleaseWindow = nil
	m.observe(ro)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP promgate_rollout_info Always 1: each Rollout's strategy, phase and step state, as its status last written says.
# TYPE promgate_rollout_info gauge
promgate_rollout_info{namespace="shop",phase="Completed",rollout="checkout",step_state="Completed",strategy="blueGreen"} 1
# HELP promgate_rollout_step The step each Rollout is at (1-based; 0 before its first release).
# TYPE promgate_rollout_step gauge
promgate_rollout_step{namespace="shop",rollout="checkout"} 3
`), names...), "the old info series, the step start and the window are gone")

	m.notified(ro, nil)
	m.notified(ro, errors.New("HTTP 500"))
	require.Equal(t, 1.0, testutil.ToFloat64(m.notifications.WithLabelValues("shop", "checkout", "failure")))

	m.forget(client.ObjectKeyFromObject(ro))
	require.Equal(t, 0, testutil.CollectAndCount(m.info)+testutil.CollectAndCount(m.step))
}
