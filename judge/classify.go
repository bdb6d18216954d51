package judge

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Classification is the judgement of one metric.
type Classification string

const (
	// Pass means no significant change in a direction that fails the metric.
	Pass Classification = "Pass"
	// High means the canary is significantly higher than the baseline.
	High Classification = "High"
	// Low means the canary is significantly lower than the baseline.
	Low Classification = "Low"
	// NoData means a side had no points left after pre-processing.
	NoData Classification = "NoData"
	// Error means the metric could not be judged; Result.Err says why.
	Error Classification = "Error"
)

// Result is the judgement of one metric with the figures behind it.
type Result struct {
	// Classification is the judgement.
	Classification Classification
	// CriticalFailure is set when a critical metric failed in a way that fails the whole run.
	CriticalFailure bool
	// MustHaveData is the setting the metric was judged with; Score counts its NoData as a failure.
	MustHaveData bool
	// Reason says in one line why the metric got its classification.
	Reason string
	// Err is why the classification is Error, nil otherwise.
	Err error
	// CILow is the lower bound of the confidence interval of the shift canary - baseline.
	CILow float64
	// CIHigh is the upper bound of that interval.
	CIHigh float64
	// Estimate is the Hodges-Lehmann estimate of the shift.
	Estimate float64
	// EffectSizeMeasure is the measure EffectSize is in.
	EffectSizeMeasure EffectSizeMeasure
	// EffectSize is the size of the change by that measure; NaN when undefined.
	EffectSize float64
	// Control describes the baseline's points.
	Control Sample
	// Experiment describes the canary's points.
	Experiment Sample
}

// Classify judges the canary's points (experiment) against the baseline's (control) for one
// metric. It never changes its arguments; CILow, CIHigh, Estimate and EffectSize are NaN
// where the classification did not get to compute them.
func Classify(control, experiment []float64, s Settings) Result {
	nan := math.NaN()
	r := Result{
		MustHaveData:      s.MustHaveData,
		CILow:             nan,
		CIHigh:            nan,
		Estimate:          nan,
		EffectSizeMeasure: s.EffectSize,
		EffectSize:        nan,
		Control:           Sample{Points: len(control), Median: nan, Mean: nan},
		Experiment:        Sample{Points: len(experiment), Median: nan, Mean: nan},
	}
	c, err := s.resolve()
	if err != nil {
		return r.fail(s.Critical, err)
	}
	r.EffectSizeMeasure = c.measure
	buf := make([]float64, 0, len(control)+len(experiment))
	y, ys, err := prepare(buf[:0:len(control)], control, c)
	r.Control = ys
	if err != nil {
		return r.fail(c.critical, fmt.Errorf("baseline: %w", err))
	}
	x, xs, err := prepare(buf[len(control):len(control)], experiment, c)
	r.Experiment = xs
	if err != nil {
		return r.fail(c.critical, fmt.Errorf("canary: %w", err))
	}
	if len(x) == 0 || len(y) == 0 {
		return r.noData(c)
	}
	switch c.measure {
	case CLES:
		r.EffectSize = cles(x, y)
	default:
		r.EffectSize = meanRatio(r.Experiment.Mean, r.Control.Mean)
	}
	if slices.Equal(x, y) {
		r.CILow, r.CIHigh, r.Estimate = 0, 0, 0
		r.Classification, r.Reason = Pass, "canary and baseline hold the same values"
		return r
	}
	xConst, yConst := x[0] == x[len(x)-1], y[0] == y[len(y)-1]
	if xConst && yConst && x[0] == y[0] {
		r.CILow, r.CIHigh, r.Estimate = 0, 0, 0
		r.Classification, r.Reason = Pass, fmt.Sprintf("every value is %.4g", x[0])
		return r
	}
	var sh shift
	constant := xConst && yConst
	if constant {
		// Deterministic in place of Kayenta's random jitter: two different constants are a
		// shift known exactly, an interval of one point, judged by the same rules.
		sh = constantShift(x[0], y[0])
	} else if sh, err = fitShift(x, y, Confidence); err != nil {
		return r.fail(c.critical, fmt.Errorf("mann-whitney: %w", err))
	}
	r.CILow, r.CIHigh, r.Estimate = sh.unscaled()
	r.decide(c, sh, func(relation string) string {
		if constant {
			return fmt.Sprintf("constant %.4g against constant baseline %.4g", x[0], y[0])
		}
		return fmt.Sprintf("%g%% CI of the shift [%.4g, %.4g] %s%g x |estimate| = %.4g",
			Confidence*100, r.CILow, r.CIHigh, relation, Tolerance, math.Abs(Tolerance*r.Estimate))
	})
	return r
}

// constantShift is the shift between two constants, halved when the difference of two
// large values would overflow, so its sign and comparisons stay right.
func constantShift(x, y float64) shift {
	exp := 0
	if math.IsInf(x-y, 0) {
		exp = -1
	}
	d := math.Ldexp(x, exp) - math.Ldexp(y, exp)
	return shift{low: d, high: d, estimate: d, exp: exp}
}

// decide applies the direction and effect-size rules to the shift; evidence describes the
// interval's relation to the bound ("above ", "below -", "not clear of ±") for the reason.
func (r *Result) decide(c config, sh shift, evidence func(relation string) string) {
	bound := Tolerance * math.Abs(sh.estimate)
	// A bound clears the line only if everywhere the root finder may have left it does:
	// with tied data the bounds and the estimate often sit on the same jump (0 for series
	// of mostly zeros), and where inside its tolerance the root finder stopped must not
	// decide the classification.
	higher := sh.low-sh.resolution(sh.low) > bound
	lower := sh.high+sh.resolution(sh.high) < -bound
	switch {
	case higher && c.direction == DirectionDecrease:
		r.Classification = Pass
		r.Reason = "canary higher, but only a decrease fails: " + evidence("above ")
	case higher && !atLeast(r.EffectSize, c.allowedIncrease):
		r.Classification = Pass
		r.Reason = "canary higher within the allowed effect: " + evidence("above ") + ", " + r.effect("<", c.allowedIncrease)
	case higher:
		r.Classification = High
		r.Reason = "canary higher: " + evidence("above ") + ", " + r.effect(">=", c.allowedIncrease)
		if c.critical && atLeast(r.EffectSize, c.criticalIncrease) {
			r.CriticalFailure = true
			r.Reason += "; critical failure: " + r.effect(">= critical", c.criticalIncrease)
		}
	case lower && c.direction == DirectionIncrease:
		r.Classification = Pass
		r.Reason = "canary lower, but only an increase fails: " + evidence("below -")
	case lower && !atMost(r.EffectSize, c.allowedDecrease):
		r.Classification = Pass
		r.Reason = "canary lower within the allowed effect: " + evidence("below -") + ", " + r.effect(">", c.allowedDecrease)
	case lower:
		r.Classification = Low
		r.Reason = "canary lower: " + evidence("below -") + ", " + r.effect("<=", c.allowedDecrease)
		if c.critical && atMost(r.EffectSize, c.criticalDecrease) {
			r.CriticalFailure = true
			r.Reason += "; critical failure: " + r.effect("<= critical", c.criticalDecrease)
		}
	default:
		r.Classification = Pass
		r.Reason = "no significant shift: " + evidence("not clear of ±")
	}
}

// atLeast and atMost let an undefined effect size (NaN) through: with no size to hold it
// back, the significant shift decides, for the allowed and the critical limits alike.
func atLeast(effect, limit float64) bool { return math.IsNaN(effect) || effect >= limit }

func atMost(effect, limit float64) bool { return math.IsNaN(effect) || effect <= limit }

// effect is the effect size compared with a limit, for a reason.
func (r *Result) effect(op string, limit float64) string {
	switch {
	case r.EffectSizeMeasure == CLES:
		return fmt.Sprintf("CLES %.4g %s %.4g", r.EffectSize, op, limit)
	case math.IsNaN(r.EffectSize):
		return "mean ratio undefined (a mean is 0)"
	default:
		return fmt.Sprintf("mean ratio %.4g %s %.4g", r.EffectSize, op, limit)
	}
}

func (r Result) noData(c config) Result {
	r.Classification = NoData
	var missing []string
	if r.Experiment.Count == 0 {
		missing = append(missing, fmt.Sprintf("no canary data (%d points, %d NaN)", r.Experiment.Points, r.Experiment.NaN))
	}
	if r.Control.Count == 0 {
		missing = append(missing, fmt.Sprintf("no baseline data (%d points, %d NaN)", r.Control.Points, r.Control.NaN))
	}
	r.Reason = strings.Join(missing, ", ")
	switch {
	case c.critical:
		r.CriticalFailure = true
		r.Reason += "; critical failure"
	case c.mustHaveData:
		r.Reason += "; the metric must have data"
	}
	return r
}

func (r Result) fail(critical bool, err error) Result {
	r.Classification = Error
	r.Err = fmt.Errorf("judge: %w", err)
	r.Reason = r.Err.Error()
	if critical {
		r.CriticalFailure = true
		r.Reason += "; critical failure"
	}
	return r
}
