package rollout

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
)

// FuzzParseWindow parses any release window: a bad one is a field error naming its field,
// never a panic (robfig's parser panics on some inputs), and a good one answers At
// consistently at any time.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []struct {
		schedule, zone, onClose string
		seconds                 int64
	}{
		{"0 22 * * *", "Europe/Paris", "Hold", 3600},
		{"30 0 22 * * 1-5", "UTC", "Abort", 7200},
		{"@daily", "", "", 60},
		{"TZ=", "", "", 60},
		{"CRON_TZ=Europe/Paris 0 1 * * *", "", "", 60},
		{"@every 1h", "", "", 60},
		{"0 0 30 2 *", "", "", 60},
		{"* * * * * * *", "Local", "Later", -5},
		{"61 * * * *", "Mars/Olympus", "", 0},
	} {
		f.Add(s.schedule, s.zone, s.onClose, s.seconds, int64(1_798_000_000))
	}
	f.Fuzz(func(t *testing.T, schedule, zone, onClose string, seconds, at int64) {
		w, err := ParseWindow(&v1alpha1.ReleaseWindow{Schedule: schedule, TimeZone: zone,
			Duration: metav1.Duration{Duration: time.Duration(seconds) * time.Second}, OnClose: v1alpha1.ReleaseWindowClosePolicy(onClose)})
		if err != nil {
			var fe *field.Error
			require.True(t, errors.As(err, &fe), "%v is not a field error", err)
			assert.Contains(t, fe.Field, "spec.releaseWindow.")
			return
		}
		now := time.Unix(at%(1<<33), 0)
		ws := w.At(now)
		if ws.Open {
			assert.True(t, ws.ClosesAt.After(now), "an open window closes later")
		} else if !ws.NextOpen.IsZero() {
			assert.True(t, ws.NextOpen.After(now), "a closed window opens later")
		}
		assert.Equal(t, ws, w.At(now), "the same time, the same answer")
	})
}

// FuzzStepArithmetic checks the split and the partition of any step on any size: every
// pod counted once, the new version within the workload, a surge the API accepts, and a
// fixed point of the corrections.
func FuzzStepArithmetic(f *testing.F) {
	for _, s := range []struct {
		n     int32
		count int32
		pct   string
	}{{5, 1, ""}, {5, 0, "50%"}, {8, 0, "40%"}, {0, 0, "100%"}, {3, 9, ""}, {1, 0, "1%"}, {5, -1, ""}, {5, 0, "150%"}} {
		f.Add(s.n, s.count, s.pct)
	}
	f.Fuzz(func(t *testing.T, n, count int32, pct string) {
		if n < 0 || n > 100_000 {
			return
		}
		replicas := intstr.FromInt32(count)
		if pct != "" {
			replicas = intstr.FromString(pct)
		}
		sp, err := stepSplit(n, &replicas)
		partition, want, perr := stepPartition(n, &replicas)
		require.Equal(t, err == nil, perr == nil, "both or neither refuse %v", replicas)
		if err != nil {
			return
		}
		assert.Equal(t, n, partition+want, "every StatefulSet pod on one side of the partition")
		assert.GreaterOrEqual(t, partition, int32(0))
		assert.Equal(t, n, sp.stable, "the stable version keeps every pod")
		assert.LessOrEqual(t, sp.want, n)
		assert.LessOrEqual(t, sp.canary, max(n, 0))
		assert.GreaterOrEqual(t, sp.surge, int32(1), "maxUnavailable 0 needs a surge")
		if n > 0 {
			assert.GreaterOrEqual(t, sp.canary, int32(1), "the Deployment controller makes one new pod at least")
		}
		m := newModel(n, n, sp.canary)
		assert.Empty(t, sp.corrections(m.revisions(), "rev0"), "the split is its own fixed point")
	})
}
