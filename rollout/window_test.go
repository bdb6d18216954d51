package rollout

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
)

func mustWindow(t *testing.T, schedule, zone string, d time.Duration) *Window {
	t.Helper()
	w, err := ParseWindow(&v1alpha1.ReleaseWindow{Schedule: schedule, TimeZone: zone, Duration: metav1.Duration{Duration: d}})
	require.NoError(t, err)
	return w
}

func TestWindowAt(t *testing.T) {
	for name, tc := range map[string]struct {
		schedule, zone string
		duration       time.Duration
		now            string
		// want is status.window: closesAt and nextOpen in the window's zone.
		want v1alpha1.WindowStatus
	}{
		"spans midnight: open after midnight": {
			schedule: "0 23 * * *", duration: 3 * time.Hour, now: "2026-01-02T01:30:00Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-02T02:00:00Z", NextOpen: "2026-01-02T23:00:00Z"},
		},
		"spans midnight: opens at its first instant": {
			schedule: "0 23 * * *", duration: 3 * time.Hour, now: "2026-01-01T23:00:00Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-02T02:00:00Z", NextOpen: "2026-01-02T23:00:00Z"},
		},
		"spans midnight: closed at its last instant": {
			schedule: "0 23 * * *", duration: 3 * time.Hour, now: "2026-01-02T02:00:00Z",
			want: v1alpha1.WindowStatus{NextOpen: "2026-01-02T23:00:00Z"},
		},
		"spans midnight: closed just before": {
			schedule: "0 23 * * *", duration: 3 * time.Hour, now: "2026-01-01T22:59:59.999Z",
			want: v1alpha1.WindowStatus{NextOpen: "2026-01-01T23:00:00Z"},
		},
		"empty zone is UTC": {
			schedule: "0 9 * * *", duration: time.Hour, now: "2026-01-01T10:30:00+01:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-01T10:00:00Z", NextOpen: "2026-01-02T09:00:00Z"},
		},
		// robfig skips an activation whose wall time does not exist: 02:30 on the
		// spring-forward day never happens, so there is no window that day.
		"Paris spring forward: missing 02:30 is skipped": {
			schedule: "30 2 * * *", zone: "Europe/Paris", duration: time.Hour, now: "2026-03-29T01:59:00+01:00",
			want: v1alpha1.WindowStatus{NextOpen: "2026-03-30T02:30:00+02:00"},
		},
		"Paris spring forward: no window after the jump": {
			schedule: "30 2 * * *", zone: "Europe/Paris", duration: time.Hour, now: "2026-03-29T03:15:00+02:00",
			want: v1alpha1.WindowStatus{NextOpen: "2026-03-30T02:30:00+02:00"},
		},
		// The duration is absolute time: 01:00 CET + 2h is 04:00 CEST on the wall clock.
		"Paris spring forward: 2h from 01:00 crosses the change": {
			schedule: "0 1 * * *", zone: "Europe/Paris", duration: 2 * time.Hour, now: "2026-03-29T03:30:00+02:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-03-29T04:00:00+02:00", NextOpen: "2026-03-30T01:00:00+02:00"},
		},
		"Paris spring forward: the caller's zone does not matter": {
			schedule: "0 1 * * *", zone: "Europe/Paris", duration: 2 * time.Hour, now: "2026-03-29T01:59:59Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-03-29T04:00:00+02:00", NextOpen: "2026-03-30T01:00:00+02:00"},
		},
		// robfig fires a repeated wall time twice (02:30 CEST, then 02:30 CET an hour
		// later); the two 1h windows touch, so they merge into one 2h window.
		"Paris fall back: repeated 02:30 fires twice and merges": {
			schedule: "30 2 * * *", zone: "Europe/Paris", duration: time.Hour, now: "2026-10-25T02:45:00+02:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-10-25T03:30:00+01:00", NextOpen: "2026-10-26T02:30:00+01:00"},
		},
		"Paris fall back: 3h from 01:00 closes at 03:00 on the wall clock": {
			schedule: "0 1 * * *", zone: "Europe/Paris", duration: 3 * time.Hour, now: "2026-10-25T02:30:00+01:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-10-25T03:00:00+01:00", NextOpen: "2026-10-26T01:00:00+01:00"},
		},
		"New York weekdays: closed over the DST weekend": {
			schedule: "0 9 * * 1-5", zone: "America/New_York", duration: 8 * time.Hour, now: "2026-03-06T18:00:00-05:00",
			want: v1alpha1.WindowStatus{NextOpen: "2026-03-09T09:00:00-04:00"},
		},
		"New York weekdays: open on the Monday after": {
			schedule: "0 9 * * 1-5", zone: "America/New_York", duration: 8 * time.Hour, now: "2026-03-09T12:00:00-04:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-03-09T17:00:00-04:00", NextOpen: "2026-03-10T09:00:00-04:00"},
		},
		"New York spring forward: missing 02:30 is skipped": {
			schedule: "30 2 * * *", zone: "America/New_York", duration: time.Hour, now: "2026-03-08T00:00:00-05:00",
			want: v1alpha1.WindowStatus{NextOpen: "2026-03-09T02:30:00-04:00"},
		},
		// 01:00 happens twice (EDT, then EST): the 2h windows overlap into one of 3h.
		"New York fall back: repeated 01:00 fires twice and merges": {
			schedule: "0 1 * * *", zone: "America/New_York", duration: 2 * time.Hour, now: "2026-11-01T01:30:00-05:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-11-01T03:00:00-05:00", NextOpen: "2026-11-02T01:00:00-05:00"},
		},
		"seconds field: open": {
			schedule: "*/30 * * * * *", duration: 10 * time.Second, now: "2026-01-01T12:00:05Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-01T12:00:10Z", NextOpen: "2026-01-01T12:00:30Z"},
		},
		"seconds field: closed": {
			schedule: "*/30 * * * * *", duration: 10 * time.Second, now: "2026-01-01T12:00:15Z",
			want: v1alpha1.WindowStatus{NextOpen: "2026-01-01T12:00:30Z"},
		},
		"seconds field: once a day": {
			schedule: "15 0 12 * * *", duration: time.Minute, now: "2026-01-01T12:00:20Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-01T12:01:15Z", NextOpen: "2026-01-02T12:00:15Z"},
		},
		"overlapping activations merge": {
			schedule: "0,10 9 * * *", duration: 15 * time.Minute, now: "2026-01-01T09:05:00Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-01T09:25:00Z", NextOpen: "2026-01-02T09:00:00Z"},
		},
		"touching activations merge": {
			schedule: "0 9,10 * * *", duration: time.Hour, now: "2026-01-01T09:30:00Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-01T11:00:00Z", NextOpen: "2026-01-02T09:00:00Z"},
		},
		"a long chain of overlaps closes when it ends": {
			schedule: "* 9-16 * * 1-5", duration: 5 * time.Minute, now: "2026-01-05T10:00:30Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-05T17:04:00Z", NextOpen: "2026-01-06T09:00:00Z"},
		},
		"a chain of overlaps closes for the weekend": {
			schedule: "* * * * 1-5", duration: time.Hour, now: "2026-01-05T10:00:00Z",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-01-10T00:59:00Z", NextOpen: "2026-01-12T00:00:00Z"},
		},
		"@daily in Paris is Paris midnight": {
			schedule: "@daily", zone: "Europe/Paris", duration: time.Hour, now: "2026-06-01T00:30:00+02:00",
			want: v1alpha1.WindowStatus{Open: true, ClosesAt: "2026-06-01T01:00:00+02:00", NextOpen: "2026-06-02T00:00:00+02:00"},
		},
		"@daily closed": {
			schedule: "@daily", duration: time.Hour, now: "2026-06-01T12:00:00Z",
			want: v1alpha1.WindowStatus{NextOpen: "2026-06-02T00:00:00Z"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := mustWindow(t, tc.schedule, tc.zone, tc.duration)
			now, err := time.Parse(time.RFC3339Nano, tc.now)
			require.NoError(t, err)
			assert.Equal(t, &tc.want, w.At(now).Status())
		})
	}
}

// TestWindowAlwaysOpen covers activations that overlap for good: At stops at its search
// bound, reports the window open at least until then, and knows no next opening.
func TestWindowAlwaysOpen(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 3, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		schedule string
		duration time.Duration
		// atLeast is how long At must find the window open from now.
		atLeast time.Duration
	}{
		"every 10 minutes for 15 minutes":      {"*/10 * * * *", 15 * time.Minute, windowHorizon},
		"every hour for an hour (touching)":    {"@hourly", time.Hour, windowHorizon},
		"longer than the period":               {"@hourly", 2 * time.Hour, windowHorizon},
		"every second for a week":              {"* * * * * *", 7 * 24 * time.Hour, windowHorizon},
		"every second for a second (step cap)": {"* * * * * *", time.Second, time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			w := mustWindow(t, tc.schedule, "Europe/Paris", tc.duration)
			start := time.Now()
			s := w.At(now)
			assert.Less(t, time.Since(start), 100*time.Millisecond)
			assert.True(t, s.Open)
			assert.True(t, s.NextOpen.IsZero(), "next open %s", s.NextOpen)
			assert.False(t, s.ClosesAt.Before(now.Add(tc.atLeast)), "closes at %s", s.ClosesAt)
			assert.Equal(t, w.Location(), s.ClosesAt.Location())
			assert.Equal(t, &v1alpha1.WindowStatus{Open: true, ClosesAt: s.ClosesAt.Format(time.RFC3339)}, s.Status())
		})
	}
}

func TestWindowLocationAndOnClose(t *testing.T) {
	w := mustWindow(t, "0 9 * * *", "", time.Hour)
	assert.Equal(t, time.UTC, w.Location())
	assert.Equal(t, v1alpha1.WindowHold, w.OnClose())

	w, err := ParseWindow(&v1alpha1.ReleaseWindow{Schedule: "0 9 * * *", TimeZone: "America/New_York", Duration: metav1.Duration{Duration: time.Hour}, OnClose: v1alpha1.WindowAbort})
	require.NoError(t, err)
	assert.Equal(t, "America/New_York", w.Location().String())
	assert.Equal(t, v1alpha1.WindowAbort, w.OnClose())
	s := w.At(time.Date(2026, 7, 1, 13, 30, 0, 0, time.UTC))
	assert.Equal(t, w.Location(), s.ClosesAt.Location())
	assert.Equal(t, w.Location(), s.NextOpen.Location())

	w, err = ParseWindow(nil)
	assert.NoError(t, err)
	assert.Nil(t, w)
}

func TestParseWindowNamesTheField(t *testing.T) {
	for name, tc := range map[string]struct {
		schedule, zone string
		duration       time.Duration
		onClose        v1alpha1.ReleaseWindowClosePolicy
		field, message string
	}{
		"empty schedule":         {schedule: " ", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "Required value"},
		"out of range":           {schedule: "61 * * * *", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "not a cron schedule"},
		"too few fields":         {schedule: "* * * *", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "not a cron schedule"},
		"too many fields":        {schedule: "0 * * * * * *", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "not a cron schedule"},
		"unknown descriptor":     {schedule: "@reboot", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "not a cron schedule"},
		"@every":                 {schedule: "@every 1h", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "no fixed phase"},
		"TZ= prefix":             {schedule: "TZ=Europe/Paris 0 9 * * *", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "spec.releaseWindow.timeZone"},
		"bare CRON_TZ= prefix":   {schedule: "CRON_TZ=UTC", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "spec.releaseWindow.timeZone"},
		"never fires":            {schedule: "0 0 30 2 *", duration: time.Hour, field: "spec.releaseWindow.schedule", message: "never fires"},
		"unknown zone":           {schedule: "0 9 * * *", zone: "Mars/Olympus", duration: time.Hour, field: "spec.releaseWindow.timeZone", message: "IANA"},
		"controller's own zone":  {schedule: "0 9 * * *", zone: "Local", duration: time.Hour, field: "spec.releaseWindow.timeZone", message: "IANA"},
		"zero duration":          {schedule: "0 9 * * *", field: "spec.releaseWindow.duration", message: "between"},
		"negative duration":      {schedule: "0 9 * * *", duration: -time.Hour, field: "spec.releaseWindow.duration", message: "between"},
		"duration over 7 days":   {schedule: "0 9 * * *", duration: 7*24*time.Hour + time.Second, field: "spec.releaseWindow.duration", message: "between"},
		"unknown close policy":   {schedule: "0 9 * * *", duration: time.Hour, onClose: "Later", field: "spec.releaseWindow.onClose", message: `supported values: "Hold", "Abort"`},
		"zone checked before it": {schedule: "@every 1h", zone: "Nowhere", field: "spec.releaseWindow.timeZone", message: "IANA"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWindow(&v1alpha1.ReleaseWindow{Schedule: tc.schedule, TimeZone: tc.zone, Duration: metav1.Duration{Duration: tc.duration}, OnClose: tc.onClose})
			fe, ok := errors.AsType[*field.Error](err)
			require.True(t, ok, "%v", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Error(), tc.message)
		})
	}

	_, err := ParseWindow(&v1alpha1.ReleaseWindow{Schedule: "0 9 * * *", Duration: metav1.Duration{Duration: 7 * 24 * time.Hour}})
	assert.NoError(t, err, "7 days is allowed")
}

// TestWindowAtMatchesActivationByActivation checks At's jumps against the plain walk
// from one activation to the next, around both Paris daylight-saving changes.
func TestWindowAtMatchesActivationByActivation(t *testing.T) {
	for _, tc := range []struct {
		schedule string
		duration time.Duration
	}{
		{"*/20 1-3 * * *", 30 * time.Minute},
		{"0,5,30 * * * *", 20 * time.Minute},
		{"*/10 9-11 * * 1-5", 15 * time.Minute},
		{"0 0,2,8 * * *", 3 * time.Hour},
		{"*/7 * 2 * * *", 7 * time.Second},
	} {
		w := mustWindow(t, tc.schedule, "Europe/Paris", tc.duration)
		for _, day := range []time.Time{
			time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC),
		} {
			for now := day; now.Before(day.Add(48 * time.Hour)); now = now.Add(9*time.Minute + 17*time.Second) {
				// Next answers in its argument's zone: ask in the window's.
				local := now.In(w.Location())
				var want WindowState
				if first := w.sched.Next(local.Add(-tc.duration)); !first.After(now) {
					last := first
					for n := w.sched.Next(last); ; n = w.sched.Next(last) {
						require.True(t, n.Before(now.Add(windowHorizon)), "%s for %s never closes", tc.schedule, tc.duration)
						if n.After(last.Add(tc.duration)) {
							want = WindowState{Open: true, ClosesAt: last.Add(tc.duration), NextOpen: n}
							break
						}
						last = n
					}
				} else {
					want = WindowState{NextOpen: w.sched.Next(local)}
				}
				require.Equal(t, want.Status(), w.At(now).Status(), "%s for %s at %s", tc.schedule, tc.duration, now)
			}
		}
	}
}
