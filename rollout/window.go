package rollout

import (
	"fmt"
	"strings"
	"time"

	// Embedded zone data so IANA zones resolve in images without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
)

const (
	// maxWindowDuration bounds spec.releaseWindow.duration: a week covers weekly
	// windows, and anything longer is better expressed as no window at all.
	maxWindowDuration = 7 * 24 * time.Hour
	// windowHorizon bounds how far ahead At follows overlapping activations: past it
	// the window counts as open for good. Longer than maxWindowDuration and a week, so
	// the close of a weekly window is always found.
	windowHorizon = 8 * 24 * time.Hour
	// windowMaxSteps bounds the work of At for dense schedules with short durations
	// (every second, 1s open), where each step can only move the close by the duration.
	windowMaxSteps = 4096
)

// windowParser takes 5-field specs, an optional leading seconds field (so a demo can
// open a window seconds after start) and descriptors such as @daily.
var windowParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Window is a parsed release window.
type Window struct {
	sched    *cron.SpecSchedule
	duration time.Duration
	loc      *time.Location
	onClose  v1alpha1.ReleaseWindowClosePolicy
}

// ParseWindow parses spec.releaseWindow (nil gives nil); errors are *field.Error naming the field.
func ParseWindow(w *v1alpha1.ReleaseWindow) (*Window, error) {
	if w == nil {
		return nil, nil
	}
	path := field.NewPath("spec", "releaseWindow")
	loc := time.UTC
	switch w.TimeZone {
	case "":
	case "Local":
		// time.LoadLocation would give the controller's own zone, which the user cannot see.
		return nil, field.Invalid(path.Child("timeZone"), w.TimeZone, fmt.Sprintf("%q is not an IANA time zone such as Europe/Paris", w.TimeZone))
	default:
		var err error
		if loc, err = time.LoadLocation(w.TimeZone); err != nil {
			return nil, field.Invalid(path.Child("timeZone"), w.TimeZone, fmt.Sprintf("%q is not an IANA time zone such as Europe/Paris: %v", w.TimeZone, err))
		}
	}

	spec := strings.TrimSpace(w.Schedule)
	switch {
	case spec == "":
		return nil, field.Required(path.Child("schedule"), "a cron schedule")
	case strings.HasPrefix(spec, "@every"):
		// @every counts from whenever the process started, so the window would move on every restart.
		return nil, field.Invalid(path.Child("schedule"), spec, fmt.Sprintf("%q is not allowed: @every has no fixed phase; use a cron expression or a descriptor such as @daily", spec))
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		// The zone has its own field; robfig also panics on a TZ= prefix with nothing after it.
		return nil, field.Invalid(path.Child("schedule"), spec, fmt.Sprintf("%q carries a time zone: set spec.releaseWindow.timeZone instead", spec))
	}
	parsed, err := windowParser.Parse(spec)
	if err != nil {
		return nil, field.Invalid(path.Child("schedule"), spec, fmt.Sprintf("%q is not a cron schedule (5 fields, 6 with leading seconds, or a descriptor such as @daily): %v", spec, err))
	}
	// Every form left after rejecting @every parses to a SpecSchedule.
	sched := parsed.(*cron.SpecSchedule)
	// Parse defaults to time.Local (the controller's zone); the window's zone governs.
	sched.Location = loc
	// Any schedule that fires at all fires within robfig's five-year search from here.
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, loc)).IsZero() {
		return nil, field.Invalid(path.Child("schedule"), spec, fmt.Sprintf("%q never fires", spec))
	}

	d := w.Duration.Duration
	if d <= 0 || d > maxWindowDuration {
		return nil, field.Invalid(path.Child("duration"), d.String(), fmt.Sprintf("%s is not between 0 (excluded) and %s", d, maxWindowDuration))
	}

	onClose := w.OnClose
	switch onClose {
	case "":
		onClose = v1alpha1.WindowHold
	case v1alpha1.WindowHold, v1alpha1.WindowAbort:
	default:
		return nil, field.NotSupported(path.Child("onClose"), onClose, []v1alpha1.ReleaseWindowClosePolicy{v1alpha1.WindowHold, v1alpha1.WindowAbort})
	}
	return &Window{sched: sched, duration: d, loc: loc, onClose: onClose}, nil
}

// Location is the window's time zone.
func (w *Window) Location() *time.Location { return w.loc }

// OnClose is what happens to a release when the window closes: Hold unless Abort was asked.
func (w *Window) OnClose() v1alpha1.ReleaseWindowClosePolicy { return w.onClose }

// WindowState is the window at one instant, times in the window's zone.
type WindowState struct {
	// Open says whether now is inside the window.
	Open bool
	// ClosesAt is when the open window closes, zero when closed. When the activations
	// overlap past the search horizon (open for good, such as */10 with 15m) it is where
	// the search stopped: the window is open at least until then.
	ClosesAt time.Time
	// NextOpen is the next opening after now, or when open after ClosesAt; zero when
	// there is none in sight (open for good, or a schedule that no longer fires).
	NextOpen time.Time
}

// At is the window's state at now: open iff some activation t has t <= now < t+duration.
func (w *Window) At(now time.Time) WindowState {
	// Next returns the first activation strictly after its argument, so this is the
	// earliest activation still open at now, if it has started.
	first := w.sched.Next(now.Add(-w.duration))
	if first.IsZero() || first.After(now) {
		return WindowState{NextOpen: w.in(w.sched.Next(now))}
	}

	// Merge overlapping (or touching) activations: the window closes at end only if no
	// activation starts in (last, end], last being the latest activation found.
	last, end := first, first.Add(w.duration)
	limit := now.Add(windowHorizon)
	for range windowMaxSteps {
		if end.After(limit) {
			return WindowState{Open: true, ClosesAt: w.in(end)}
		}
		// Try to jump half a duration at once, so that dense schedules cost about
		// horizon/duration steps instead of one step per activation.
		if n := w.sched.Next(end.Add(-w.duration / 2)); !n.IsZero() && !n.After(end) {
			last, end = n, n.Add(w.duration)
			continue
		}
		n := w.sched.Next(last)
		if n.IsZero() || n.After(end) {
			return WindowState{Open: true, ClosesAt: w.in(end), NextOpen: w.in(n)}
		}
		last, end = n, n.Add(w.duration)
	}
	return WindowState{Open: true, ClosesAt: w.in(end)}
}

// in converts t to the window's zone, keeping the zero time zero.
func (w *Window) in(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(w.loc)
}

// Status renders the state for status.window, times in RFC 3339 in the window's zone.
func (s WindowState) Status() *v1alpha1.WindowStatus {
	st := &v1alpha1.WindowStatus{Open: s.Open}
	if !s.ClosesAt.IsZero() {
		st.ClosesAt = s.ClosesAt.Format(time.RFC3339)
	}
	if !s.NextOpen.IsZero() {
		st.NextOpen = s.NextOpen.Format(time.RFC3339)
	}
	return st
}
