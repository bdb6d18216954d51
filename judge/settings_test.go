package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSettingsDefaults(t *testing.T) {
	c, err := Settings{}.resolve()
	require.NoError(t, err)
	assert.Equal(t, config{
		direction:        DirectionEither,
		nan:              NaNRemove,
		outliers:         OutliersKeep,
		outlierFactor:    3,
		measure:          MeanRatio,
		allowedIncrease:  1,
		allowedDecrease:  1,
		criticalIncrease: 1,
		criticalDecrease: 1,
	}, c)

	c, err = Settings{EffectSize: CLES}.resolve()
	require.NoError(t, err)
	assert.Equal(t, [4]float64{0.5, 0.5, 0.5, 0.5}, [4]float64{c.allowedIncrease, c.allowedDecrease, c.criticalIncrease, c.criticalDecrease})

	c, err = Settings{
		Direction: DirectionIncrease, NaN: NaNReplace, Outliers: OutliersRemove, OutlierFactor: new(1.5),
		Critical: true, MustHaveData: true,
		AllowedIncrease: new(1.1), AllowedDecrease: new(0.9), CriticalIncrease: new(1.5), CriticalDecrease: new(0.5),
	}.resolve()
	require.NoError(t, err)
	assert.Equal(t, config{
		direction: DirectionIncrease, nan: NaNReplace, outliers: OutliersRemove, outlierFactor: 1.5,
		critical: true, mustHaveData: true, measure: MeanRatio,
		allowedIncrease: 1.1, allowedDecrease: 0.9, criticalIncrease: 1.5, criticalDecrease: 0.5,
	}, c)
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name     string
		settings Settings
		mention  string
	}{
		{"direction", Settings{Direction: "up"}, `direction "up"`},
		{"NaN strategy", Settings{NaN: "zero"}, `NaN strategy "zero"`},
		{"outlier strategy", Settings{Outliers: "drop"}, `outlier strategy "drop"`},
		{"negative outlier factor", Settings{OutlierFactor: new(-1.0)}, "outlier factor -1"},
		{"NaN outlier factor", Settings{OutlierFactor: new(math.NaN())}, "outlier factor NaN"},
		{"effect size", Settings{EffectSize: "cohen"}, `effect size "cohen"`},
		{"NaN limit", Settings{AllowedIncrease: new(math.NaN())}, "allowedIncrease NaN"},
		{"infinite limit", Settings{CriticalDecrease: new(math.Inf(1))}, "criticalDecrease +Inf"},
		{"CLES limit above 1", Settings{EffectSize: CLES, CriticalIncrease: new(1.2)}, "criticalIncrease 1.2"},
		{"CLES limit below 0", Settings{EffectSize: CLES, AllowedDecrease: new(-0.1)}, "allowedDecrease -0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.settings.Validate()
			assert.ErrorIs(t, err, ErrInvalidSettings)
			assert.ErrorContains(t, err, tt.mention)
		})
	}
	assert.NoError(t, Settings{AllowedIncrease: new(1.2), AllowedDecrease: new(0.0)}.Validate(), "mean ratio limits may be any finite number")
	assert.NoError(t, Settings{EffectSize: CLES, AllowedIncrease: new(1.0), AllowedDecrease: new(0.0)}.Validate(), "CLES limits may be 0 or 1")
}
