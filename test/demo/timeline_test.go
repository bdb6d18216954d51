package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/trafficsim"
)

// printer writes the demo's timeline: each line stamped with the time since the start.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newPrinter(w io.Writer) *printer { return &printer{w: w, start: time.Now()} }

func (p *printer) since() time.Duration { return time.Since(p.start) }

// say prints one timeline line about subject (an app, the window, an alert, the bed).
func (p *printer) say(subject, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%7.1fs  %-9s %s\n", p.since().Seconds(), subject, fmt.Sprintf(format, args...))
}

func (p *printer) title(s string) {
	p.text(s + "\n" + strings.Repeat("=", len(s)) + "\n")
}

func (p *printer) section(s string) {
	p.text("\n--- " + s + " ---")
}

// text prints a block as it is.
func (p *printer) text(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, s)
}

// report prints a release report: its summary and each step.
func (p *printer) report(name string, rep *v1alpha1.ReleaseReport) {
	if rep == nil {
		p.text(name + ": no report (the release did not end)")
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, decided by %s\n  %s\n", name, rep.Outcome, rep.DecidedBy, rep.Summary)
	for _, st := range rep.Steps {
		took := "-"
		if st.EndedAt != nil {
			took = st.EndedAt.Sub(st.StartedAt.Time).String()
		}
		line := fmt.Sprintf("  step %d  %-10s decided by %-10s %5s  %s", st.Index, st.Verdict, st.DecidedBy, took, strings.Join(st.Measurements, ", "))
		fmt.Fprintln(&b, strings.TrimRight(line, " "))
	}
	p.text(strings.TrimRight(b.String(), "\n"))
}

// watcher polls the Rollouts, their AnalysisRuns, pods, HTTPRoutes, the simulator,
// Prometheus and Alertmanager, and prints what changed: the timeline.
type watcher struct {
	b      *bed
	out    *printer
	opens  time.Time
	apps   []*appWatch
	window string
	// alerts holds the last state printed per source and alert.
	alerts map[string]string
	http   *http.Client
}

// appWatch is what the watcher knows and has printed about one app.
type appWatch struct {
	name        string
	want        v1alpha1.RolloutPhase
	blue, green string

	ro    *v1alpha1.Rollout
	pods  map[string]int     // Ready pods by revision name
	split map[string]float64 // the simulator's shares by revision name

	state, traffic  string
	heldSeen        bool
	greenBeforeOpen bool
	runs            []string
	printed         map[string]bool
}

func newWatcher(b *bed, out *printer, opens time.Time) *watcher {
	return &watcher{b: b, out: out, opens: opens, alerts: map[string]string{}, http: &http.Client{Timeout: 2 * time.Second}}
}

// add watches an app whose stable revision is blue.
func (w *watcher) add(a app, blue string) {
	w.apps = append(w.apps, &appWatch{name: a.name, want: a.outcome, blue: blue, printed: map[string]bool{}})
}

func (w *watcher) app(name string) *appWatch {
	for _, a := range w.apps {
		if a.name == name {
			return a
		}
	}
	return nil
}

// run prints the timeline until every release reached its outcome and traffic settled,
// or one ended otherwise, or the deadline passed.
func (w *watcher) run(deadline time.Time) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		w.poll()
		done := true
		for _, a := range w.apps {
			settled, err := a.outcome()
			if err != nil {
				return err
			}
			done = done && settled
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			var missing []string
			for _, a := range w.apps {
				if settled, _ := a.outcome(); !settled && a.ro != nil {
					missing = append(missing, fmt.Sprintf("%s wants %s, is %s at step %d: %s", a.name, a.want, a.ro.Status.Phase, a.ro.Status.CurrentStepIndex, a.ro.Status.Message))
				}
			}
			return fmt.Errorf("not settled %s after the window opened: %s", verdictWithin, strings.Join(missing, "; "))
		}
		<-tick.C
	}
}

// outcome says whether the app's release ended as it must and traffic settled; an error
// when it ended otherwise.
func (a *appWatch) outcome() (bool, error) {
	if a.ro == nil {
		return false, nil
	}
	st := a.ro.Status
	switch st.Phase {
	case a.want:
	case v1alpha1.RolloutPhaseCompleted, v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCancelled:
		return false, fmt.Errorf("%s: the release ended %s, not %s: %s", a.name, st.Phase, a.want, st.Message)
	default:
		return false, nil
	}
	if a.want == v1alpha1.RolloutPhaseCompleted {
		// Done once the old version is gone and every request reaches green.
		return st.StableRevision == a.green && maps.Equal(a.pods, map[string]int{"green": 5}) && maps.Equal(a.split, map[string]float64{"green": 1}), nil
	}
	return maps.Equal(a.split, map[string]float64{"blue": 1}), nil
}

func (w *watcher) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Alerts first: when an alert fires and aborts a release between two polls, the
	// timeline then shows the cause before the effect.
	w.pollAlerts(ctx)
	for _, a := range w.apps {
		w.pollApp(ctx, a)
	}
}

func (w *watcher) pollApp(ctx context.Context, a *appWatch) {
	var ro v1alpha1.Rollout
	if err := w.b.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.name}, &ro); err != nil {
		w.out.say(a.name, "reading the Rollout: %v", err)
		return
	}
	a.ro = &ro
	st := &ro.Status
	if a.green == "" && st.CanaryRevision != "" && st.CanaryRevision != a.blue {
		a.green = st.CanaryRevision
		w.out.say(a.name, "green is revision %s", a.green)
	}
	a.heldSeen = a.heldSeen || st.Held
	w.windowState(st.Window)

	state := fmt.Sprintf("%s|%d|%s|%t", st.Phase, st.CurrentStepIndex, st.CurrentStepState, st.Held)
	if state != a.state {
		a.state = state
		if st.CurrentStepIndex == 0 {
			w.out.say(a.name, "%s: %s", st.Phase, st.Message)
		} else {
			w.out.say(a.name, "%s, step %d/%d %s: %s", st.Phase, st.CurrentStepIndex, len(ro.Spec.Strategy.Canary.Steps), st.CurrentStepState, st.Message)
		}
	}
	if aa := st.AlertAbort; aa != nil && !a.printed["alert"] {
		a.printed["alert"] = true
		w.out.say(a.name, "promgate received alert %s (%s, labels %v)", aa.AlertName, aa.Source, aa.Labels)
	}
	if run := st.AnalysisRuns.Step; run != "" && !slices.Contains(a.runs, run) {
		a.runs = append(a.runs, run)
	}
	w.pollRuns(ctx, a)

	steps := st.Steps
	report := st.Report
	if report != nil && (a.green == "" || report.Revision != a.green) {
		report = nil
	}
	if report != nil {
		steps = append(slices.Clone(report.Steps), steps...)
	}
	for _, r := range steps {
		key := fmt.Sprintf("step/%d/%s", r.Index, r.StartedAt.UTC().Format(time.RFC3339))
		if r.EndedAt == nil || a.printed[key] {
			continue
		}
		a.printed[key] = true
		w.out.say(a.name, "verdict: step %d %s, decided by %s%s", r.Index, r.Verdict, r.DecidedBy, measured(r.Measurements))
	}
	if report != nil && !a.printed["report"] {
		a.printed["report"] = true
		w.out.say(a.name, "report: %s", report.Summary)
	}
	w.pollTraffic(ctx, a)
}

// pollRuns prints each new measurement of the release's AnalysisRuns, and each run's
// verdict; a run is followed after the Rollout moved on, so its last results show.
func (w *watcher) pollRuns(ctx context.Context, a *appWatch) {
	for _, name := range a.runs {
		if a.printed["run/"+name] {
			continue
		}
		var run v1alpha1.AnalysisRun
		if err := w.b.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &run); err != nil {
			if apierrors.IsNotFound(err) {
				// Named in status before it is created.
				continue
			}
			w.out.say(a.name, "reading AnalysisRun %s: %v", name, err)
			continue
		}
		for _, mr := range run.Status.MetricResults {
			for _, m := range mr.Measurements {
				if m.FinishedAt == nil {
					continue
				}
				key := fmt.Sprintf("m/%s/%s/%s/%s", name, mr.Name, m.StartedAt, m.FinishedAt)
				if a.printed[key] {
					continue
				}
				a.printed[key] = true
				value := m.Value
				if value == "" {
					value = "(no data)"
				}
				w.out.say(a.name, "%s", strings.TrimSpace(fmt.Sprintf("analysis: %s = %s -> %s %s", mr.Name, value, m.Phase, m.Message)))
			}
		}
		switch run.Status.Phase {
		case v1alpha1.AnalysisPhaseSuccessful, v1alpha1.AnalysisPhaseFailed, v1alpha1.AnalysisPhaseError, v1alpha1.AnalysisPhaseInconclusive:
			a.printed["run/"+name] = true
			w.out.say(a.name, "analysis %s: %s %s", name, run.Status.Phase, run.Status.Message)
		}
	}
}

// pollTraffic prints the HTTPRoute's weights, the simulator's split of the requests and
// the Ready pods, by revision, when any of them changed.
func (w *watcher) pollTraffic(ctx context.Context, a *appWatch) {
	weights, err := routeWeights(ctx, w.b.Client, a.name)
	if err != nil {
		w.out.say(a.name, "reading the HTTPRoute: %v", err)
		return
	}
	var list corev1.PodList
	if err := w.b.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"app": a.name}); err != nil {
		w.out.say(a.name, "listing pods: %v", err)
		return
	}
	pods := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && testbed.PodReady(&p) {
			pods[a.revision(p.Labels[appsv1.DefaultDeploymentUniqueLabelKey])]++
		}
	}
	split := map[string]float64{}
	for b, share := range w.b.Sim.Snapshot().Entry(trafficsim.KindHTTPRoute, a.name).All {
		split[a.revision(b.Revision)] += share
	}
	a.pods, a.split = pods, split
	if pods["green"] > 0 && time.Now().Before(w.opens) {
		a.greenBeforeOpen = true
	}

	var route []string
	for _, svc := range slices.Sorted(maps.Keys(weights)) {
		route = append(route, fmt.Sprintf("%s %d", svc, weights[svc]))
	}
	if len(weights) == 1 {
		route = slices.Collect(maps.Keys(weights))
	}
	var sim, ready []string
	for _, rev := range revisionOrder(split) {
		sim = append(sim, fmt.Sprintf("%s %.0f%%", rev, split[rev]*100))
	}
	for _, rev := range revisionOrder(pods) {
		ready = append(ready, fmt.Sprintf("%s %d", rev, pods[rev]))
	}
	line := fmt.Sprintf("traffic: HTTPRoute %s | simulator %s | Ready pods %s",
		strings.Join(route, " / "), strings.Join(sim, " / "), strings.Join(ready, " / "))
	if line != a.traffic {
		a.traffic = line
		w.out.say(a.name, "%s", line)
	}
}

// measured renders a step's decisive measurements after its verdict.
func measured(ms []string) string {
	if len(ms) == 0 {
		return ""
	}
	return " on " + strings.Join(ms, ", ")
}

// revision names a pod-template-hash as the demo does.
func (a *appWatch) revision(hash string) string {
	switch {
	case hash == "":
		return "nobody"
	case hash == a.blue:
		return "blue"
	case a.green == "" || hash == a.green:
		// Before the Rollout names it, any revision other than blue is the new one.
		return "green"
	}
	return hash
}

// revisionOrder lists blue, then green, then anything else.
func revisionOrder[V any](m map[string]V) []string {
	rank := map[string]int{"blue": 0, "green": 1}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(x, y string) int {
		rx, ok := rank[x]
		if !ok {
			rx = 2
		}
		ry, ok := rank[y]
		if !ok {
			ry = 2
		}
		if rx != ry {
			return rx - ry
		}
		return strings.Compare(x, y)
	})
	return keys
}

// windowState prints the release window's state as the controller computed it, once per
// change (both Rollouts share the window).
func (w *watcher) windowState(ws *v1alpha1.WindowStatus) {
	if ws == nil {
		return
	}
	var line string
	if ws.Open {
		line = fmt.Sprintf("open until %s (%s): paused steps whose analysis passed are promoted with no human", ws.ClosesAt, zone)
	} else {
		line = fmt.Sprintf("closed: next opening %s (%s); new revisions wait", ws.NextOpen, zone)
	}
	if line != w.window {
		w.window = line
		w.out.say("window", "%s", line)
	}
}

// pollAlerts prints the demo's alert as Prometheus and Alertmanager see it, on change.
func (w *watcher) pollAlerts(ctx context.Context) {
	now := map[string]string{}
	var prom struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
				Value  string            `json:"value"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if w.getJSON(ctx, w.b.Prometheus.URL+"/api/v1/alerts", &prom) {
		for _, al := range prom.Data.Alerts {
			if al.Labels["alertname"] != alertName {
				continue
			}
			key := "Prometheus " + describeAlert(al.Labels)
			now[key] = al.State
			if v, err := strconv.ParseFloat(al.Value, 64); err == nil {
				now[key] += fmt.Sprintf(" (error ratio %.2f)", v)
			}
		}
	} else {
		maps.Copy(now, w.filter("Prometheus "))
	}
	var am []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if w.getJSON(ctx, w.b.Alertmanager.URL+"/api/v2/alerts", &am) {
		for _, al := range am {
			if al.Labels["alertname"] == alertName {
				now["Alertmanager "+describeAlert(al.Labels)] = al.Status.State + ": notifying promgate's webhook"
			}
		}
	} else {
		maps.Copy(now, w.filter("Alertmanager "))
	}
	for _, key := range slices.Sorted(maps.Keys(now)) {
		if w.alerts[key] != now[key] && !sameState(w.alerts[key], now[key]) {
			w.out.say("alert", "%s %s", key, now[key])
		}
		w.alerts[key] = now[key]
	}
	for _, key := range slices.Sorted(maps.Keys(w.alerts)) {
		if _, ok := now[key]; !ok {
			w.out.say("alert", "%s resolved", key)
			delete(w.alerts, key)
		}
	}
}

// sameState says two alert descriptions differ only in the value after the state, which
// moves with every evaluation and is not worth a line.
func sameState(a, b string) bool {
	first := func(s string) string { return strings.SplitN(s, " ", 2)[0] }
	return a != "" && first(a) == first(b)
}

// filter is the alerts last seen from one source, kept when that source did not answer.
func (w *watcher) filter(prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range w.alerts {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func (w *watcher) getJSON(ctx context.Context, url string, into any) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(into) == nil
}

// describeAlert renders an alert as name{label="value", ...} without the alertname.
func describeAlert(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k != "alertname" {
			parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
		}
	}
	return labels["alertname"] + "{" + strings.Join(parts, ", ") + "}"
}
