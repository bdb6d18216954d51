package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repeat is n copies of v.
func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func join(parts ...[]float64) []float64 {
	var out []float64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// series is n points from base to base+10 in a fixed scrambled order, with ties, as a
// gauge scraped every step looks.
func series(base float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = base + float64((i*7)%11)
	}
	return out
}

func plus(v []float64, c float64) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = f + c
	}
	return out
}

func times(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = f * k
	}
	return out
}

func withNaN(v []float64, every int) []float64 {
	out := append([]float64(nil), v...)
	for i := 0; i < len(out); i += every {
		out[i] = math.NaN()
	}
	return out
}

func TestClassify(t *testing.T) {
	base := series(100, 30)
	centred := join(repeat(-3, 4), repeat(-2, 4), repeat(-1, 4), repeat(0, 4), repeat(1, 4), repeat(2, 4), repeat(3, 4))
	nan := math.NaN()
	tests := []struct {
		name       string
		control    []float64
		experiment []float64
		settings   Settings
		want       Classification
		critical   bool
		reason     string
	}{
		// Identity and one value.
		{"identical populations", base, base, Settings{}, Pass, false, "same values"},
		{"identical in another order", base, join(base[15:], base[:15]), Settings{}, Pass, false, "same values"},
		{"one distinct value", []float64{1, 1, 1}, []float64{1, 1}, Settings{}, Pass, false, "every value is 1"},

		// Direction.
		{"higher, either", base, plus(base, 20), Settings{}, High, false, "canary higher: 98% CI of the shift [18, 22] above 0.25 x |estimate| = 5, mean ratio 1.19 >= 1"},
		{"higher, increase", base, plus(base, 20), Settings{Direction: DirectionIncrease}, High, false, "canary higher"},
		{"higher, decrease", base, plus(base, 20), Settings{Direction: DirectionDecrease}, Pass, false, "only a decrease fails"},
		{"lower, either", base, plus(base, -20), Settings{}, Low, false, "canary lower: 98% CI of the shift [-22, -18] below -0.25 x |estimate| = 5, mean ratio 0.8096 <= 1"},
		{"lower, decrease", base, plus(base, -20), Settings{Direction: DirectionDecrease}, Low, false, "canary lower"},
		{"lower, increase", base, plus(base, -20), Settings{Direction: DirectionIncrease}, Pass, false, "only an increase fails"},
		{"shift within the noise", base, plus(base, 0.5), Settings{}, Pass, false, "no significant shift: 98% CI of the shift [-1.5, 2.5] not clear of ±0.25"},
		{"small but clear shift", base, plus(base, 3), Settings{}, High, false, "[1, 5]"},

		// Allowed and critical effect sizes.
		{"increase below allowed", base, plus(base, 20), Settings{AllowedIncrease: new(1.25)}, Pass, false, "within the allowed effect: 98% CI of the shift [18, 22] above 0.25 x |estimate| = 5, mean ratio 1.19 < 1.25"},
		{"increase at allowed", base, plus(base, 20), Settings{AllowedIncrease: new(1.1)}, High, false, "mean ratio 1.19 >= 1.1"},
		{"decrease above allowed", base, plus(base, -20), Settings{AllowedDecrease: new(0.7)}, Pass, false, "mean ratio 0.8096 > 0.7"},
		{"decrease at allowed", base, plus(base, -20), Settings{AllowedDecrease: new(0.9)}, Low, false, "mean ratio 0.8096 <= 0.9"},
		{"critical high by default", base, plus(base, 20), Settings{Critical: true}, High, true, "; critical failure: mean ratio 1.19 >= critical 1"},
		{"critical high below critical increase", base, plus(base, 20), Settings{Critical: true, CriticalIncrease: new(1.5)}, High, false, "canary higher"},
		{"critical high beyond critical increase", base, plus(base, 20), Settings{Critical: true, AllowedIncrease: new(1.1), CriticalIncrease: new(1.15)}, High, true, ">= critical 1.15"},
		{"critical low above critical decrease", base, plus(base, -20), Settings{Critical: true, CriticalDecrease: new(0.5)}, Low, false, "canary lower"},
		{"critical low beyond critical decrease", base, plus(base, -20), Settings{Critical: true, CriticalDecrease: new(0.85)}, Low, true, "<= critical 0.85"},
		{"critical metric that passes", base, base, Settings{Critical: true}, Pass, false, "same values"},
		{"critical within allowed", base, plus(base, 20), Settings{Critical: true, AllowedIncrease: new(1.5)}, Pass, false, "within the allowed effect"},

		// CLES.
		{"CLES separated", base, plus(base, 20), Settings{EffectSize: CLES}, High, false, "CLES 1 >= 0.5"},
		{"CLES overlapping, default limit", base, plus(base, 5), Settings{EffectSize: CLES}, High, false, "CLES 0.8506 >= 0.5"},
		{"CLES overlapping below allowed", base, plus(base, 5), Settings{EffectSize: CLES, AllowedIncrease: new(0.9)}, Pass, false, "CLES 0.8506 < 0.9"},
		{"CLES lower", base, plus(base, -5), Settings{EffectSize: CLES, AllowedDecrease: new(0.2)}, Low, false, "CLES 0.1494 <= 0.2"},
		{"CLES critical", base, plus(base, 20), Settings{EffectSize: CLES, Critical: true, CriticalIncrease: new(0.95)}, High, true, "CLES 1 >= critical 0.95"},

		// Ties.
		{"ties, shifted one step", join(repeat(1, 20), repeat(2, 10)), join(repeat(1, 2), repeat(2, 20), repeat(3, 8)), Settings{}, High, false, "[1, 1]"},
		{"ties, more of the same values", join(repeat(1, 20), repeat(2, 10)), join(repeat(1, 10), repeat(2, 20)), Settings{}, Pass, false, "no significant shift"},
		// The exact lower bound and estimate are both 0 here (the median pairwise difference
		// is 0); the root finder returns them within its tolerance, slightly above 0, which
		// must not read as a shift.
		{"ties, bounds on the jump at 0", join(repeat(0, 25), repeat(1, 5)), join(repeat(0, 5), repeat(1, 7)), Settings{}, Pass, false, "no significant shift"},
		{"ties, bounds on the jump at 0, mirrored", join(repeat(0, 5), repeat(1, 7)), join(repeat(0, 25), repeat(1, 5)), Settings{}, Pass, false, "no significant shift"},
		{"one-valued canary against a spread baseline", base, repeat(130, 30), Settings{}, High, false, "[23, 27]"},

		// Two different constants: decided by comparing them.
		{"constants, canary higher", []float64{1, 1, 1}, []float64{2, 2, 2}, Settings{}, High, false, "canary higher: constant 2 against constant baseline 1, mean ratio 2 >= 1"},
		{"constants, canary lower", []float64{2, 2}, []float64{1, 1, 1}, Settings{}, Low, false, "canary lower: constant 1 against constant baseline 2, mean ratio 0.5 <= 1"},
		{"constants, one point each", []float64{1}, []float64{1.5}, Settings{}, High, false, "constant 1.5"},
		{"constants, direction", []float64{1, 1, 1}, []float64{2, 2, 2}, Settings{Direction: DirectionDecrease}, Pass, false, "only a decrease fails"},
		{"constants, within allowed", []float64{1, 1, 1}, []float64{2, 2, 2}, Settings{AllowedIncrease: new(2.5)}, Pass, false, "mean ratio 2 < 2.5"},
		{"constants, zero baseline", []float64{0, 0, 0}, []float64{0.01, 0.01}, Settings{AllowedIncrease: new(5.0)}, High, false, "mean ratio undefined (a mean is 0)"},
		{"constants, zero canary", []float64{3, 3}, []float64{0, 0, 0}, Settings{Critical: true, CriticalDecrease: new(0.5)}, Low, true, "critical failure: mean ratio undefined"},
		// The shift overflows float64; the decision is made on it halved.
		{"constants, huge", []float64{-math.MaxFloat64}, []float64{math.MaxFloat64}, Settings{EffectSize: CLES}, High, false, "canary higher"},

		// Zero means.
		{"zero baseline mean lets the shift decide", centred, plus(centred, 10), Settings{AllowedIncrease: new(5.0)}, High, false, "canary higher: 98% CI of the shift [9, 11] above 0.25 x |estimate| = 2.5, mean ratio undefined (a mean is 0)"},
		{"zero canary mean", plus(centred, 10), centred, Settings{AllowedDecrease: new(0.1)}, Low, false, "mean ratio undefined"},

		// NaN.
		{"NaN removed", base, withNaN(plus(base, 20), 3), Settings{}, High, false, "canary higher"},
		{"NaN removed, no shift", base, join(base[:5], repeat(nan, 25)), Settings{}, Pass, false, "no significant shift"},
		{"NaN replaced by 0 drags the canary down", base, join(base[:5], repeat(nan, 25)), Settings{NaN: NaNReplace}, Low, false, "canary lower"},
		{"all NaN removed", base, repeat(nan, 30), Settings{}, NoData, false, "no canary data (30 points, 30 NaN)"},
		{"all NaN replaced", base, repeat(nan, 30), Settings{NaN: NaNReplace}, Low, false, "mean ratio undefined"},

		// Outliers.
		{"outlier kept inflates the mean ratio", base, join(plus(base, 3), []float64{1e6}), Settings{AllowedIncrease: new(1.2)}, High, false, "mean ratio 308 >= 1.2"},
		{"outlier removed", base, join(plus(base, 3), []float64{1e6}), Settings{AllowedIncrease: new(1.2), Outliers: OutliersRemove}, Pass, false, "mean ratio 1.029 < 1.2"},
		{"outlier removed with a wide factor kept", base, join(plus(base, 3), []float64{1e6}), Settings{AllowedIncrease: new(1.2), Outliers: OutliersRemove, OutlierFactor: new(1e6)}, High, false, "mean ratio 308"},

		// Missing data.
		{"no canary points", base, nil, Settings{}, NoData, false, "no canary data (0 points, 0 NaN)"},
		{"no baseline points", []float64{}, base, Settings{}, NoData, false, "no baseline data (0 points, 0 NaN)"},
		{"no points at all", nil, nil, Settings{}, NoData, false, "no canary data (0 points, 0 NaN), no baseline data (0 points, 0 NaN)"},
		{"must have data", base, nil, Settings{MustHaveData: true}, NoData, false, "; the metric must have data"},
		{"critical without data", base, repeat(nan, 4), Settings{Critical: true}, NoData, true, "no canary data (4 points, 4 NaN); critical failure"},
		{"critical and must have data", nil, base, Settings{Critical: true, MustHaveData: true}, NoData, true, "; critical failure"},

		// Errors.
		{"invalid settings", base, base, Settings{Direction: "sideways"}, Error, false, `judge: invalid judge settings: direction "sideways"`},
		{"infinite canary", base, []float64{1, math.Inf(1)}, Settings{}, Error, false, "judge: canary: non-finite value +Inf at point 1"},
		{"infinite baseline, critical", []float64{math.Inf(-1)}, base, Settings{Critical: true}, Error, true, "judge: baseline: non-finite value -Inf at point 0; critical failure"},
		// 1 - d and (1 + 2^-52) - d round to the same float64 at d = 1 - 1e17, as in R.
		{"differences below float64 resolution at the shift", []float64{1e17}, []float64{1, 1 + 0x1p-52}, Settings{}, Error, false, "judge: mann-whitney: cannot compute a confidence interval when all observations are tied"},
		{"invalid settings, critical", base, base, Settings{Critical: true, EffectSize: "x"}, Error, true, "critical failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Classify(tt.control, tt.experiment, tt.settings)
			assert.Equal(t, tt.want, r.Classification, r.Reason)
			assert.Equal(t, tt.critical, r.CriticalFailure, r.Reason)
			assert.Contains(t, r.Reason, tt.reason)
			assert.Equal(t, tt.settings.MustHaveData, r.MustHaveData)
			if tt.want == Error {
				assert.Error(t, r.Err)
			} else {
				assert.NoError(t, r.Err)
			}
			switch tt.want {
			case High:
				assert.Greater(t, r.CILow, 0.0)
			case Low:
				assert.Less(t, r.CIHigh, 0.0)
			}
		})
	}
}

// The figures behind a classification, for the kayenta-shaped report.
func TestClassifyFigures(t *testing.T) {
	control := []float64{1, 2, 3, 4, math.NaN()}
	experiment := []float64{40, 10, 30, 20}
	r := Classify(control, experiment, Settings{})
	require.Equal(t, High, r.Classification, r.Reason)
	assert.Equal(t, Sample{Points: 5, NaN: 1, Count: 4, Median: 2.5, Mean: 2.5}, r.Control)
	assert.Equal(t, Sample{Points: 4, Count: 4, Median: 25, Mean: 25}, r.Experiment)
	assert.Equal(t, MeanRatio, r.EffectSizeMeasure)
	assert.Equal(t, 10.0, r.EffectSize)
	// At 98% the interval of Kayenta's vector is wider than at 95% and hits both ends.
	want, err := MannWhitney(experiment, control[:4], Confidence)
	require.NoError(t, err)
	assert.Equal(t, [3]float64{want.Low, want.High, want.Estimate}, [3]float64{r.CILow, r.CIHigh, r.Estimate})
	assert.Equal(t, [3]float64{6, 39, 22.5}, [3]float64{r.CILow, r.CIHigh, r.Estimate})
	assert.Equal(t, []float64{40, 10, 30, 20}, experiment, "input unchanged")

	r = Classify(nil, experiment, Settings{EffectSize: CLES})
	assert.Equal(t, CLES, r.EffectSizeMeasure)
	for _, v := range []float64{r.CILow, r.CIHigh, r.Estimate, r.EffectSize, r.Control.Median, r.Control.Mean} {
		assert.True(t, math.IsNaN(v), "nothing computed without data")
	}
	assert.Equal(t, 25.0, r.Experiment.Median, "the side with data is still described")

	r = Classify(experiment, experiment, Settings{})
	assert.Equal(t, [4]float64{0, 0, 0, 1}, [4]float64{r.CILow, r.CIHigh, r.Estimate, r.EffectSize})
}

func TestClassifyErrorsWrap(t *testing.T) {
	r := Classify([]float64{1}, []float64{math.Inf(1)}, Settings{})
	assert.ErrorIs(t, r.Err, ErrNonFinite)
	r = Classify([]float64{1}, []float64{2}, Settings{NaN: "drop"})
	assert.ErrorIs(t, r.Err, ErrInvalidSettings)
	assert.Equal(t, r.Err.Error(), r.Reason)
}

// The same data in another unit gets the same judgement, also for metrics as small as
// error ratios, where R's absolute root tolerance would blur the interval.
func TestClassifyScaleFree(t *testing.T) {
	base := series(100, 30)
	for _, tt := range []struct {
		name       string
		experiment []float64
	}{
		{"higher", plus(base, 3)},
		{"lower", plus(base, -3)},
		{"same", plus(base, 0.5)},
	} {
		want := Classify(base, tt.experiment, Settings{})
		for _, k := range []float64{1e-6, 1e-9, 1e6} {
			got := Classify(times(base, k), times(tt.experiment, k), Settings{})
			assert.Equal(t, want.Classification, got.Classification, "%s x %g: %s", tt.name, k, got.Reason)
			assert.InDelta(t, want.CILow*k, got.CILow, 1e-3*k, "%s x %g", tt.name, k)
			assert.InDelta(t, want.CIHigh*k, got.CIHigh, 1e-3*k, "%s x %g", tt.name, k)
		}
	}
}

func TestClassifyDeterministic(t *testing.T) {
	control := series(100, 60)
	experiment := plus(series(100, 60), 1)
	first := Classify(control, experiment, Settings{})
	for range 20 {
		assert.Equal(t, first, Classify(control, experiment, Settings{}))
	}
}

// Values near the largest float64 are judged, not turned into Inf or NaN on the way.
func TestClassifyHugeValues(t *testing.T) {
	m := math.MaxFloat64
	// The shift itself overflows (its report is +Inf); CLES, as the mean ratio of means of
	// opposite sign says nothing.
	r := Classify([]float64{-m, -0.9 * m, -0.8 * m}, []float64{0.8 * m, 0.9 * m, m}, Settings{EffectSize: CLES})
	assert.Equal(t, High, r.Classification, r.Reason)
	r = Classify([]float64{0.8 * m, 0.9 * m, m}, []float64{-m, -0.9 * m, -0.8 * m}, Settings{EffectSize: CLES})
	assert.Equal(t, Low, r.Classification, r.Reason)
	r = Classify([]float64{0.1 * m, 0.2 * m, 0.3 * m}, []float64{0.7 * m, 0.8 * m, m}, Settings{})
	assert.Equal(t, High, r.Classification, r.Reason)
	assert.False(t, math.IsInf(r.CILow, 0) || math.IsNaN(r.CILow), "this shift fits in a float64")
	r = Classify([]float64{0.5 * m, 0.7 * m, m}, []float64{0.6 * m, 0.8 * m, 0.9 * m}, Settings{})
	assert.Equal(t, Pass, r.Classification, r.Reason)
}
