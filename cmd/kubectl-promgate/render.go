package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/promgate/promgate/api/v1alpha1"
)

// Icons as Argo Rollouts users know them (DESIGN.md section 9).
const (
	iconOK          = "✔"
	iconFailed      = "✖"
	iconError       = "⚠"
	iconUnknown     = "?"
	iconProgressing = "◌"
	iconPaused      = "॥"
	iconScaledDown  = "•"
)

// ANSI colours of the icons.
const (
	colorNone   = ""
	colorGreen  = "\x1b[32m"
	colorRed    = "\x1b[31m"
	colorYellow = "\x1b[33m"
	colorBlue   = "\x1b[36m"
	colorGray   = "\x1b[90m"
	colorReset  = "\x1b[0m"
)

// status is an icon, the text it stands beside and the colour of both.
type status struct{ icon, text, color string }

func (s status) String() string { return s.icon + " " + s.text }

func phaseStatus(ro *v1alpha1.Rollout) status {
	p := ro.Status.Phase
	switch p {
	case v1alpha1.RolloutPhaseHealthy, v1alpha1.RolloutPhaseCompleted:
		return status{iconOK, string(p), colorGreen}
	case v1alpha1.RolloutPhasePaused:
		return status{iconPaused, string(p), colorYellow}
	case v1alpha1.RolloutPhaseAborted:
		return status{iconFailed, string(p), colorRed}
	case v1alpha1.RolloutPhaseCancelled:
		return status{iconError, string(p), colorYellow}
	case v1alpha1.RolloutPhaseDisabled:
		return status{iconScaledDown, string(p), colorGray}
	case "":
		return status{iconProgressing, string(v1alpha1.RolloutPhaseInitial), colorBlue}
	}
	return status{iconProgressing, string(p), colorBlue}
}

func analysisStatus(p v1alpha1.AnalysisPhase) status {
	switch p {
	case v1alpha1.AnalysisPhaseSuccessful:
		return status{iconOK, string(p), colorGreen}
	case v1alpha1.AnalysisPhaseFailed:
		return status{iconFailed, string(p), colorRed}
	case v1alpha1.AnalysisPhaseError:
		return status{iconError, string(p), colorRed}
	case v1alpha1.AnalysisPhaseInconclusive:
		return status{iconUnknown, string(p), colorYellow}
	case "":
		return status{iconProgressing, string(v1alpha1.AnalysisPhasePending), colorBlue}
	}
	return status{iconProgressing, string(p), colorBlue}
}

func revisionStatus(r revision) status {
	switch {
	case r.desired == 0 && len(r.pods) == 0:
		return status{iconScaledDown, "ScaledDown", colorGray}
	case r.ready >= r.desired && r.desired > 0:
		return status{iconOK, "Healthy", colorGreen}
	}
	return status{iconProgressing, "Progressing", colorBlue}
}

func podStatus(p *corev1.Pod) status {
	switch {
	case p.DeletionTimestamp != nil:
		return status{iconProgressing, "Terminating", colorBlue}
	case p.Status.Phase == corev1.PodRunning && podReady(p):
		return status{iconOK, "Running", colorGreen}
	case p.Status.Phase == corev1.PodFailed:
		return status{iconFailed, "Failed", colorRed}
	case p.Status.Phase == corev1.PodSucceeded:
		return status{iconOK, "Completed", colorGreen}
	case p.Status.Phase == "":
		return status{iconProgressing, string(corev1.PodPending), colorBlue}
	}
	return status{iconProgressing, string(p.Status.Phase), colorBlue}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// age renders a duration as kubectl does: 45s, 5m, 3h, 2d.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return duration.HumanDuration(d)
}

// painter colours text, or does nothing without colour.
type painter bool

func (p painter) paint(s status) string {
	if !p || s.color == colorNone {
		return s.String()
	}
	return s.color + s.String() + colorReset
}

// table aligns cells on their visible width, so colours never shift a column.
type table struct {
	rows  [][]cell
	paint painter
}

type cell struct {
	text string
	st   *status
}

func text(s string) cell       { return cell{text: s} }
func colored(s status) cell    { return cell{text: s.String(), st: &s} }
func (t *table) add(c ...cell) { t.rows = append(t.rows, c) }

func (t *table) write(w io.Writer) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, r := range t.rows {
		var sb strings.Builder
		for i, c := range r {
			s := c.text
			if c.st != nil {
				s = t.paint.paint(*c.st)
			}
			sb.WriteString(s)
			if i < len(r)-1 {
				sb.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(sb.String(), " "))
	}
}

// renderRollout writes get's header and tree.
func renderRollout(w io.Writer, v *view, paint painter) {
	ro := v.ro
	st := ro.Status
	var h table
	h.paint = paint
	field := func(name, value string) { h.add(text(name+":"), text(value)) }
	field("Name", ro.Name)
	field("Namespace", ro.Namespace)
	h.add(text("Status:"), colored(phaseStatus(ro)))
	if st.Message != "" {
		field("Message", st.Message)
	}
	strategy := "BlueGreen"
	if ro.Spec.Strategy.Canary != nil {
		strategy = "Canary"
	}
	field("Strategy", strategy)
	if releasing(ro) || st.Phase == v1alpha1.RolloutPhaseCompleted && st.CanaryRevision != "" {
		field("  Step", fmt.Sprintf("%d/%d %s", st.CurrentStepIndex, len(stepsOf(ro)), st.CurrentStepState))
	} else {
		field("  Step", "-")
	}
	field("  Traffic", trafficLine(v))
	if line := windowLine(ro, v.now); line != "" {
		field("Window", line)
	}
	if ro.Spec.Paused {
		field("Held", fmt.Sprintf("by a human (spec.paused): kubectl promgate resume %s", ro.Name))
	}
	if line := alertLine(ro); line != "" {
		field("Alert abort", line)
	}
	if c := invalid(ro); c != nil {
		field("Invalid", c.Message)
	}
	revs := shownRevisions(v)
	for i, img := range imageLines(revs, st) {
		name := ""
		if i == 0 {
			name = "Images:"
		}
		h.add(text(name), text(img))
	}
	if v.w != nil {
		desired, ready := v.w.replicas()
		field("Replicas", fmt.Sprintf("desired %d, ready %d (%s)", desired, ready, v.w.describe()))
	}
	if v.problem != "" {
		field("Problem", v.problem)
	}
	h.write(w)
	fmt.Fprintln(w)

	var t table
	t.paint = paint
	t.add(text("NAME"), text("KIND"), text("STATUS"), text("AGE"), text("INFO"))
	t.add(text("⟳ "+ro.Name), text("Rollout"), colored(phaseStatus(ro)), text(age(v.now.Sub(ro.CreationTimestamp.Time))), text(""))
	for i, r := range revs {
		last := i == len(revs)-1
		branch, indent := branches(last)
		role := roleOf(r, st)
		t.add(text(branch+"# revision:"+dash(r.number)), text(""), text(""), text(""), text(role))
		runs := runsOf(v.runs, r.hash)
		t.add(text(indent+branchOf(len(runs) == 0)+"⧉ "+r.name), text(r.kind), colored(revisionStatus(r)), text(age(v.now.Sub(r.created.Time))),
			text(joinInfo(role, fmt.Sprintf("%d/%d ready", r.ready, r.desired))))
		podIndent := indent + continuation(len(runs) == 0)
		for j := range r.pods {
			p := &r.pods[j]
			pb, _ := branches(j == len(r.pods)-1)
			t.add(text(podIndent+pb+"□ "+p.Name), text("Pod"), colored(podStatus(p)), text(age(v.now.Sub(p.CreationTimestamp.Time))), text(podInfo(p)))
		}
		for j := range runs {
			run := runs[j]
			rb, rIndent := branches(j == len(runs)-1)
			t.add(text(indent+rb+"α "+run.Name), text("AnalysisRun"), colored(analysisStatus(run.Status.Phase)), text(age(v.now.Sub(run.CreationTimestamp.Time))),
				text(runInfo(run)))
			for k, mr := range run.Status.MetricResults {
				mb, _ := branches(k == len(run.Status.MetricResults)-1)
				t.add(text(indent+rIndent+mb+mr.Name), text("Metric"), colored(analysisStatus(mr.Phase)), text(""), text(metricInfo(run, mr)))
			}
		}
	}
	t.write(w)
}

// branches are the tree's branch for an item and the indent of its children.
func branches(last bool) (string, string) {
	if last {
		return "└──", "   "
	}
	return "├──", "│  "
}

func branchOf(last bool) string {
	b, _ := branches(last)
	return b
}

func continuation(last bool) string {
	_, c := branches(last)
	return c
}

// shownRevisions are the revisions worth a line: stable, canary, those with pods and
// those with runs of this Rollout.
func shownRevisions(v *view) []revision {
	if v.w == nil {
		return nil
	}
	var out []revision
	for _, r := range v.w.revisions() {
		if r.hash == v.ro.Status.StableRevision || r.hash == v.ro.Status.CanaryRevision || len(r.pods) > 0 || len(runsOf(v.runs, r.hash)) > 0 {
			out = append(out, r)
		}
	}
	return out
}

func roleOf(r revision, st v1alpha1.RolloutStatus) string {
	switch r.hash {
	case st.CanaryRevision:
		if st.CanaryRevision == st.StableRevision {
			return "stable"
		}
		return "canary"
	case st.StableRevision:
		return "stable"
	}
	return ""
}

// imageLines are the images of the canary and stable revisions, each tagged with the
// revisions that run it.
func imageLines(revs []revision, st v1alpha1.RolloutStatus) []string {
	var order []string
	roles := map[string][]string{}
	for _, r := range revs {
		role := roleOf(r, st)
		if role == "" {
			continue
		}
		for _, img := range r.images {
			if _, ok := roles[img]; !ok {
				order = append(order, img)
			}
			if !slices.Contains(roles[img], role) {
				roles[img] = append(roles[img], role)
			}
		}
	}
	out := make([]string, len(order))
	for i, img := range order {
		out[i] = img + " (" + strings.Join(roles[img], ", ") + ")"
	}
	return out
}

// runsOf are the runs that measured revision hash.
func runsOf(runs []v1alpha1.AnalysisRun, hash string) []v1alpha1.AnalysisRun {
	var out []v1alpha1.AnalysisRun
	for _, r := range runs {
		if r.Labels["promgate.io/revision"] == hash {
			out = append(out, r)
		}
	}
	return out
}

func podInfo(p *corev1.Pod) string {
	var ready, restarts int32
	for _, c := range p.Status.ContainerStatuses {
		if c.Ready {
			ready++
		}
		restarts += c.RestartCount
	}
	info := fmt.Sprintf("ready:%d/%d", ready, len(p.Spec.Containers))
	if restarts > 0 {
		info += fmt.Sprintf(",restarts:%d", restarts)
	}
	return info
}

// counts are a metric's measurements by phase, the non-zero ones: "✔ 3,✖ 1".
func counts(successful, failed, inconclusive, errored int32) string {
	var out []string
	for _, c := range []struct {
		icon string
		n    int32
	}{{iconOK, successful}, {iconFailed, failed}, {iconUnknown, inconclusive}, {iconError, errored}} {
		if c.n > 0 {
			out = append(out, fmt.Sprintf("%s %d", c.icon, c.n))
		}
	}
	return strings.Join(out, ",")
}

func runInfo(run v1alpha1.AnalysisRun) string {
	var s, f, i, e int32
	for _, mr := range run.Status.MetricResults {
		s, f, i, e = s+mr.Successful, f+mr.Failed, i+mr.Inconclusive, e+mr.Error
	}
	return counts(s, f, i, e)
}

// metricInfo is a metric's counts, its last value and the condition it is judged by.
func metricInfo(run v1alpha1.AnalysisRun, mr v1alpha1.MetricResult) string {
	parts := []string{counts(mr.Successful, mr.Failed, mr.Inconclusive, mr.Error)}
	if n := len(mr.Measurements); n > 0 {
		parts = append(parts, "last "+dash(mr.Measurements[n-1].Value))
	}
	for _, m := range run.Spec.Metrics {
		if m.Name != mr.Name {
			continue
		}
		if m.SuccessCondition != "" {
			parts = append(parts, "success: "+m.SuccessCondition)
		}
		if m.FailureCondition != "" {
			parts = append(parts, "failure: "+m.FailureCondition)
		}
	}
	if mr.DryRun {
		parts = append(parts, "dry run")
	}
	return joinInfo(parts...)
}

func joinInfo(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// trafficLine is the split the step asks for and the one each routing gives now.
func trafficLine(v *view) string {
	desired, ok := desiredTraffic(v.ro)
	if !ok {
		return "no release in progress"
	}
	var live []string
	for _, r := range v.routes {
		if r.problem != "" {
			live = append(live, fmt.Sprintf("%s: %s", r.what, r.problem))
			continue
		}
		s := fmt.Sprintf("%d%% (%s)", r.weight, r.what)
		if len(r.headers) > 0 {
			s += " and requests with " + strings.Join(r.headers, " or ")
		}
		live = append(live, s)
	}
	if len(live) == 0 {
		return fmt.Sprintf("desired %d%% to the new version, no traffic routing", desired)
	}
	return fmt.Sprintf("desired %d%% to the new version, actual %s", desired, strings.Join(live, "; "))
}
