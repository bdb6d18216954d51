package judge

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	stats "github.com/promgate/promgate/judge"
)

// Bounds of a measurement's value, which status keeps for each retained measurement. Like
// a query's shaped result it details at most maxShown comparisons; what is left out is
// counted by classification.
const (
	maxShown = 10
	// maxLabels and maxReason cut label sets and reasons (which may quote an error) short.
	maxLabels = 80
	maxReason = 120
	// maxNamed is how many critical failures a message names.
	maxNamed = 3
)

// explain is the measurement's value: the score, then each comparison's classification,
// the shift's interval and both medians, worst first within each metric. Each metric
// details an equal share of maxShown comparisons (at least one while they last) and
// counts the rest.
func (s *Source) explain(all []judged, sum stats.Summary, noData bool) string {
	var b strings.Builder
	if noData {
		b.WriteString("no data")
	} else {
		fmt.Fprintf(&b, "score %s (%s)", num(sum.Score), sum.Verdict)
	}
	perMetric := max(1, maxShown/len(s.comparisons))
	shown := 0
	for i, c := range s.comparisons {
		js := worstFirst(all, i)
		n := min(len(js), perMetric, maxShown-shown)
		for _, j := range js[:n] {
			b.WriteString("; ")
			b.WriteString(entry(c, j))
		}
		shown += n
		if rest := js[n:]; len(rest) > 0 {
			fmt.Fprintf(&b, "; %s: %d comparisons not shown (%s)", c.name, len(rest), counts(rest))
		}
	}
	return b.String()
}

// message says why the phase, from the summary's figures, with as few names as it takes.
func (s *Source) message(all []judged, sum stats.Summary, noData bool) string {
	if noData {
		if name := s.unpaired(all); name != "" {
			return fmt.Sprintf("no scored comparison has data on both sides: the baseline's and the canary's series of %s share no label set (aggregate away the labels that tell them apart: sum by, or without the revision label)", name)
		}
		return "no scored comparison has data on both sides"
	}
	scored, missing := 0, 0
	for _, j := range all {
		if !s.comparisons[j.comparison].muted {
			scored++
			if j.result.Classification == stats.NoData {
				missing++
			}
		}
	}
	th := s.thresholds
	switch {
	case len(sum.CriticalFailures) > 0:
		named := sum.CriticalFailures[:min(len(sum.CriticalFailures), maxNamed)]
		msg := "critical failure of " + strings.Join(named, ", ")
		if more := len(sum.CriticalFailures) - len(named); more > 0 {
			msg += fmt.Sprintf(" and %d more", more)
		}
		return msg + ": score 0"
	case 2*missing >= scored:
		return fmt.Sprintf("no data in %d of %d scored comparisons, half or more: score 0", missing, scored)
	}
	var msg string
	switch sum.Verdict {
	case stats.VerdictPass:
		msg = fmt.Sprintf("score %s reached the pass threshold %s", num(sum.Score), num(th.Pass))
	case stats.VerdictMarginal:
		msg = fmt.Sprintf("score %s is marginal: at least %s, below the pass threshold %s", num(sum.Score), num(th.Marginal), num(th.Pass))
	default:
		msg = fmt.Sprintf("score %s is below the marginal threshold %s", num(sum.Score), num(th.Marginal))
	}
	if len(sum.Groups) > 1 {
		parts := make([]string, len(sum.Groups))
		for i, g := range sum.Groups {
			parts[i] = fmt.Sprintf("%s %s x %s%%", cmp.Or(g.Name, "ungrouped"), num(g.Score), num(g.Weight))
		}
		msg += " (groups " + strings.Join(parts, ", ") + ")"
	}
	return msg
}

// worstFirst is metric i's comparisons, those that decide a failure first.
func worstFirst(all []judged, i int) []judged {
	var js []judged
	for _, j := range all {
		if j.comparison == i {
			js = append(js, j)
		}
	}
	slices.SortStableFunc(js, func(a, b judged) int { return cmp.Compare(rank(a.result), rank(b.result)) })
	return js
}

func rank(r stats.Result) int {
	switch {
	case r.CriticalFailure:
		return 0
	case r.Classification == stats.High || r.Classification == stats.Low:
		return 1
	case r.Classification == stats.Error:
		return 2
	case r.Classification == stats.NoData:
		return 3
	}
	return 4
}

// entry is one comparison: "latency{route="/pay"}: High (critical failure), shift
// [0.08, 0.12], medians canary 0.21 baseline 0.1, mean ratio 2.1".
func entry(c comparison, j judged) string {
	r := j.result
	var b strings.Builder
	b.WriteString(c.name)
	b.WriteString(cut(j.labels, maxLabels))
	if c.muted {
		b.WriteString(" (muted)")
	}
	b.WriteString(": ")
	b.WriteString(string(r.Classification))
	if r.CriticalFailure {
		b.WriteString(" (critical failure)")
	}
	switch r.Classification {
	case stats.NoData, stats.Error:
		b.WriteString(", ")
		b.WriteString(cut(strings.TrimSuffix(r.Reason, "; critical failure"), maxReason))
		return b.String()
	}
	fmt.Fprintf(&b, ", shift [%s, %s], medians canary %s baseline %s", num(r.CILow), num(r.CIHigh), num(r.Experiment.Median), num(r.Control.Median))
	switch {
	case r.EffectSizeMeasure == stats.CLES:
		fmt.Fprintf(&b, ", CLES %s", num(r.EffectSize))
	case math.IsNaN(r.EffectSize):
		b.WriteString(", mean ratio undefined")
	default:
		fmt.Fprintf(&b, ", mean ratio %s", num(r.EffectSize))
	}
	return b.String()
}

// counts is "3 Pass, 1 NoData", in the order classifications first appear.
func counts(js []judged) string {
	var order []stats.Classification
	n := map[stats.Classification]int{}
	for _, j := range js {
		c := j.result.Classification
		if n[c] == 0 {
			order = append(order, c)
		}
		n[c]++
	}
	parts := make([]string, len(order))
	for i, c := range order {
		parts[i] = fmt.Sprintf("%d %s", n[c], c)
	}
	return strings.Join(parts, ", ")
}

// num writes a figure with 4 significant digits, as the judge's reasons do.
func num(v float64) string { return fmt.Sprintf("%.4g", v) }

// cut shortens s to at most n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// unpaired names the first scored comparison whose sides both had series but of no label
// set in common: the queries, not the canary, are what went wrong.
func (s *Source) unpaired(all []judged) string {
	type sides struct{ baseline, canary bool }
	seen := map[int]*sides{}
	for _, j := range all {
		c := s.comparisons[j.comparison]
		if c.muted || j.only == "" {
			continue
		}
		sd := seen[j.comparison]
		if sd == nil {
			sd = &sides{}
			seen[j.comparison] = sd
		}
		if j.only == sideName(0) {
			sd.baseline = true
		} else {
			sd.canary = true
		}
		if sd.baseline && sd.canary {
			return c.name
		}
	}
	return ""
}
