package judge

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Typical thresholds of Kayenta users, used when Thresholds is left zero.
const (
	DefaultPassThreshold     = 95.0
	DefaultMarginalThreshold = 75.0
)

// ErrInvalidScoring is wrapped by every error about Score's input.
var ErrInvalidScoring = errors.New("invalid scoring input")

// Verdict is the outcome of a run's score.
type Verdict string

const (
	// VerdictPass means the score reached the pass threshold.
	VerdictPass Verdict = "Pass"
	// VerdictMarginal means the score reached the marginal threshold but not the pass threshold.
	VerdictMarginal Verdict = "Marginal"
	// VerdictFail means the score fell below the marginal threshold, or an override set it to 0.
	VerdictFail Verdict = "Fail"
)

// Thresholds are the scores (0-100) a run needs to pass or to be marginal; the zero value means the defaults.
type Thresholds struct {
	Pass, Marginal float64
}

// MetricResult is one metric's Result as Score counts it.
type MetricResult struct {
	// Name identifies the metric in the summary.
	Name string
	// Group is the metric's group for weighting; metrics without one share the group "".
	Group string
	// Muted metrics are reported in the summary and never scored.
	Muted bool
	// Result is the metric's classification.
	Result Result
}

// GroupScore is one group's part of a run's score.
type GroupScore struct {
	// Name of the group.
	Name string
	// Weight is the group's share of the score in percent.
	Weight float64
	// Score is 100 * Pass / (Pass + High + Low + FailingNoData), or 100 when that is 0.
	Score float64
	// Pass, High, Low, NoData and Error count the group's scored metrics by classification.
	Pass, High, Low, NoData, Error int
	// FailingNoData counts the NoData metrics that must have data, which fail in the group.
	FailingNoData int
}

// Summary is a run's score, verdict and why.
type Summary struct {
	// Score is 0-100, rounded to 2 decimals.
	Score float64
	// Verdict is the score against the thresholds.
	Verdict Verdict
	// Reason says in one line how the score came about.
	Reason string
	// Groups are the scored groups in the order their first metric came.
	Groups []GroupScore
	// CriticalFailures names the scored metrics that failed critically.
	CriticalFailures []string
	// Muted names the muted metrics with their classification, e.g. "latency (High)".
	Muted []string
}

// Score combines the metrics' results into a run's score and verdict. weights are the
// groups' shares in percent (0-100 each); groups without one split what the weights leave
// of 100 equally. Any critical failure, or NoData in half or more of the scored metrics, makes the
// score 0 and the verdict Fail.
func Score(results []MetricResult, weights map[string]float64, th Thresholds) (Summary, error) {
	th, err := th.resolve()
	if err != nil {
		return Summary{}, err
	}
	for g, w := range weights {
		if !(w >= 0 && w <= 100) {
			return Summary{}, fmt.Errorf("%w: weight %v of group %q is not a percentage in [0, 100]", ErrInvalidScoring, w, g)
		}
	}
	var s Summary
	index := map[string]int{}
	scored, noData := 0, 0
	for _, m := range results {
		c := m.Result.Classification
		switch c {
		case Pass, High, Low, NoData, Error:
		default:
			return Summary{}, fmt.Errorf("%w: metric %q has classification %q", ErrInvalidScoring, m.Name, c)
		}
		if m.Muted {
			s.Muted = append(s.Muted, fmt.Sprintf("%s (%s)", m.Name, c))
			continue
		}
		scored++
		i, ok := index[m.Group]
		if !ok {
			i = len(s.Groups)
			index[m.Group] = i
			s.Groups = append(s.Groups, GroupScore{Name: m.Group})
		}
		g := &s.Groups[i]
		switch c {
		case Pass:
			g.Pass++
		case High:
			g.High++
		case Low:
			g.Low++
		case NoData:
			noData++
			g.NoData++
			if m.Result.MustHaveData {
				g.FailingNoData++
			}
		case Error:
			g.Error++
		}
		if m.Result.CriticalFailure {
			s.CriticalFailures = append(s.CriticalFailures, fmt.Sprintf("%s (%s)", m.Name, c))
		}
	}
	if err := weigh(s.Groups, weights); err != nil {
		return Summary{}, err
	}
	muted := ""
	if len(s.Muted) > 0 {
		muted = "; muted, not scored: " + strings.Join(s.Muted, ", ")
	}
	switch {
	case scored == 0:
		s.Verdict, s.Reason = VerdictFail, "no metric to score"+muted
		return s, nil
	case len(s.CriticalFailures) > 0:
		s.Verdict, s.Reason = VerdictFail, "critical failure: "+strings.Join(s.CriticalFailures, ", ")+muted
		return s, nil
	case 2*noData >= scored:
		s.Verdict = VerdictFail
		s.Reason = fmt.Sprintf("no data in %d of %d scored metrics, half or more%s", noData, scored, muted)
		return s, nil
	}
	score := 0.0
	parts := make([]string, len(s.Groups))
	for i, g := range s.Groups {
		score += g.Score * g.Weight / 100
		name := g.Name
		if name == "" {
			name = "ungrouped"
		}
		parts[i] = fmt.Sprintf("%s %.2f x %.4g%%", name, g.Score, g.Weight)
	}
	s.Score = math.Round(score*100) / 100
	switch {
	case s.Score >= th.Pass:
		s.Verdict = VerdictPass
	case s.Score >= th.Marginal:
		s.Verdict = VerdictMarginal
	default:
		s.Verdict = VerdictFail
	}
	s.Reason = fmt.Sprintf("score %.2f from %s: %s (pass %g, marginal %g)%s", s.Score, strings.Join(parts, ", "), s.Verdict, th.Pass, th.Marginal, muted)
	return s, nil
}

// weigh fills in each group's score and its weight in percent. Explicit weights are taken
// as given, groups without one split what is left of 100, and all are then normalised to
// add up to 100, so weights that overshoot (or groups absent from this run) still give a
// score within 0-100.
func weigh(groups []GroupScore, weights map[string]float64) error {
	explicit, unweighted := 0.0, 0
	for _, g := range groups {
		if w, ok := weights[g.Name]; ok {
			explicit += w
		} else {
			unweighted++
		}
	}
	share := 0.0
	if unweighted > 0 {
		share = max(0, 100-explicit) / float64(unweighted)
	}
	total := 0.0
	for i := range groups {
		g := &groups[i]
		w, ok := weights[g.Name]
		if !ok {
			w = share
		}
		g.Weight = w
		total += w
		if d := g.Pass + g.High + g.Low + g.FailingNoData; d > 0 {
			g.Score = 100 * float64(g.Pass) / float64(d)
		} else {
			g.Score = 100
		}
	}
	if len(groups) > 0 && !(total > 0) {
		return fmt.Errorf("%w: the weights of the scored groups add up to %v", ErrInvalidScoring, total)
	}
	for i := range groups {
		groups[i].Weight *= 100 / total
	}
	return nil
}

func (t Thresholds) resolve() (Thresholds, error) {
	if t == (Thresholds{}) {
		return Thresholds{Pass: DefaultPassThreshold, Marginal: DefaultMarginalThreshold}, nil
	}
	if !(t.Marginal >= 0 && t.Marginal <= t.Pass && t.Pass <= 100) {
		return Thresholds{}, fmt.Errorf("%w: thresholds pass %v and marginal %v are not 0 <= marginal <= pass <= 100", ErrInvalidScoring, t.Pass, t.Marginal)
	}
	return t, nil
}
