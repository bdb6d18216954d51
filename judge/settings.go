package judge

import (
	"errors"
	"fmt"
	"math"
)

// Confidence is the two-sided confidence level of the shift's interval, fixed as in Kayenta.
const Confidence = 0.98

// Tolerance is the fraction of the estimated shift the interval must clear to count as a change.
const Tolerance = 0.25

// DefaultOutlierFactor is the IQR multiple of the outlier fences when Settings leaves it unset.
const DefaultOutlierFactor = 3.0

// ErrInvalidSettings is wrapped by every error about Settings.
var ErrInvalidSettings = errors.New("invalid judge settings")

// Direction is the change of the canary that fails a metric.
type Direction string

const (
	// DirectionEither fails a metric on a significant increase or decrease.
	DirectionEither Direction = "either"
	// DirectionIncrease fails a metric only on a significant increase.
	DirectionIncrease Direction = "increase"
	// DirectionDecrease fails a metric only on a significant decrease.
	DirectionDecrease Direction = "decrease"
)

// NaNStrategy is what happens to NaN points before judging.
type NaNStrategy string

const (
	// NaNRemove drops NaN points.
	NaNRemove NaNStrategy = "remove"
	// NaNReplace turns NaN points into 0, for series where a missing value means nothing happened.
	NaNReplace NaNStrategy = "replace"
)

// OutlierStrategy is whether outlying points are dropped before judging.
type OutlierStrategy string

const (
	// OutliersKeep judges every point.
	OutliersKeep OutlierStrategy = "keep"
	// OutliersRemove drops points outside the fences of each side.
	OutliersRemove OutlierStrategy = "remove"
)

// EffectSizeMeasure is how the size of a shift is measured against the allowed and critical limits.
type EffectSizeMeasure string

const (
	// MeanRatio is mean(canary) / mean(baseline); undefined (NaN) when either mean is 0.
	MeanRatio EffectSizeMeasure = "meanRatio"
	// CLES is the common-language effect size: the chance a canary point exceeds a baseline point.
	CLES EffectSizeMeasure = "cles"
)

// Settings are one metric's judging options; every zero or nil field means Kayenta's default.
type Settings struct {
	// Direction is the change that fails the metric; "" means DirectionEither.
	Direction Direction
	// NaN is what happens to NaN points; "" means NaNRemove.
	NaN NaNStrategy
	// Outliers is whether outlying points are dropped; "" means OutliersKeep.
	Outliers OutlierStrategy
	// OutlierFactor multiplies the IQR in the outlier fences; nil means DefaultOutlierFactor.
	OutlierFactor *float64
	// Critical makes a failure of this metric (beyond the critical effect size), NoData or Error fail the run.
	Critical bool
	// MustHaveData counts NoData as a failure in the metric's group.
	MustHaveData bool
	// EffectSize measures the shift for the limits below; "" means MeanRatio.
	EffectSize EffectSizeMeasure
	// AllowedIncrease is the effect size a High needs; nil means 1.0 (MeanRatio) or 0.5 (CLES).
	AllowedIncrease *float64
	// AllowedDecrease is the effect size a Low needs; nil means 1.0 (MeanRatio) or 0.5 (CLES).
	AllowedDecrease *float64
	// CriticalIncrease is the effect size that makes a critical High fail the run; nil as AllowedIncrease.
	CriticalIncrease *float64
	// CriticalDecrease is the effect size that makes a critical Low fail the run; nil as AllowedDecrease.
	CriticalDecrease *float64
}

// config is Settings with every default filled in and every value checked.
type config struct {
	direction        Direction
	nan              NaNStrategy
	outliers         OutlierStrategy
	outlierFactor    float64
	critical         bool
	mustHaveData     bool
	measure          EffectSizeMeasure
	allowedIncrease  float64
	allowedDecrease  float64
	criticalIncrease float64
	criticalDecrease float64
}

// Validate reports whether the settings can be judged with, so a run can refuse them before it starts.
func (s Settings) Validate() error {
	_, err := s.resolve()
	return err
}

func (s Settings) resolve() (config, error) {
	c := config{
		direction:     orDefault(s.Direction, DirectionEither),
		nan:           orDefault(s.NaN, NaNRemove),
		outliers:      orDefault(s.Outliers, OutliersKeep),
		outlierFactor: DefaultOutlierFactor,
		critical:      s.Critical,
		mustHaveData:  s.MustHaveData,
		measure:       orDefault(s.EffectSize, MeanRatio),
	}
	switch c.direction {
	case DirectionEither, DirectionIncrease, DirectionDecrease:
	default:
		return config{}, fmt.Errorf("%w: direction %q is not increase, decrease or either", ErrInvalidSettings, s.Direction)
	}
	switch c.nan {
	case NaNRemove, NaNReplace:
	default:
		return config{}, fmt.Errorf("%w: NaN strategy %q is not remove or replace", ErrInvalidSettings, s.NaN)
	}
	switch c.outliers {
	case OutliersKeep, OutliersRemove:
	default:
		return config{}, fmt.Errorf("%w: outlier strategy %q is not keep or remove", ErrInvalidSettings, s.Outliers)
	}
	if s.OutlierFactor != nil {
		f := *s.OutlierFactor
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return config{}, fmt.Errorf("%w: outlier factor %v is not a finite number >= 0", ErrInvalidSettings, f)
		}
		c.outlierFactor = f
	}
	def, lo, hi := 1.0, math.Inf(-1), math.Inf(1)
	switch c.measure {
	case MeanRatio:
	case CLES:
		// CLES is a probability, so a limit outside [0, 1] could never be met or always would.
		def, lo, hi = 0.5, 0, 1
	default:
		return config{}, fmt.Errorf("%w: effect size %q is not meanRatio or cles", ErrInvalidSettings, s.EffectSize)
	}
	var err error
	if c.allowedIncrease, err = limit("allowedIncrease", s.AllowedIncrease, c.measure, def, lo, hi); err != nil {
		return config{}, err
	}
	if c.allowedDecrease, err = limit("allowedDecrease", s.AllowedDecrease, c.measure, def, lo, hi); err != nil {
		return config{}, err
	}
	if c.criticalIncrease, err = limit("criticalIncrease", s.CriticalIncrease, c.measure, def, lo, hi); err != nil {
		return config{}, err
	}
	if c.criticalDecrease, err = limit("criticalDecrease", s.CriticalDecrease, c.measure, def, lo, hi); err != nil {
		return config{}, err
	}
	return c, nil
}

// limit is an effect-size limit or its default, checked against the measure's range.
func limit(name string, v *float64, measure EffectSizeMeasure, def, lo, hi float64) (float64, error) {
	if v == nil {
		return def, nil
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < lo || *v > hi {
		return 0, fmt.Errorf("%w: %s %v is not a finite number in [%g, %g] for %s", ErrInvalidSettings, name, *v, lo, hi, measure)
	}
	return *v, nil
}

func orDefault[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}
