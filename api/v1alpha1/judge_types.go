package v1alpha1

// JudgeMetric compares a canary with a baseline, Kayenta's way: at each measurement, both
// sides of every comparison are range queries over the lookback, judged point against
// point by a Mann-Whitney test (direction, effect size, criticality), and the comparisons
// are scored together. The score against the thresholds is the measurement's phase:
// pass or above Successful, marginal or above Inconclusive, below Failed; a critical
// failure is Failed whatever the rest. A metric with a judge provider takes no
// successCondition or failureCondition: the thresholds decide. noData applies when no
// scored comparison has data on both sides.
// +kubebuilder:validation:XValidation:rule="!has(self.thresholds) || self.thresholds.marginal <= self.thresholds.pass",message="thresholds.marginal cannot exceed thresholds.pass"
type JudgeMetric struct {
	// Prometheus is where both sides are queried. Unset: the controller's
	// --prometheus-address, with no auth.
	// +optional
	Prometheus *JudgePrometheus `json:"prometheus,omitempty"`
	// Lookback is the range each comparison looks at, ending at the measurement time,
	// e.g. "5m".
	Lookback DurationString `json:"lookback"`
	// Step is the resolution of both range queries, e.g. "15s": a comparison has up to
	// lookback/step + 1 points per side.
	Step DurationString `json:"step"`
	// Thresholds are the scores a measurement needs. Unset: pass 95, marginal 75.
	// +optional
	Thresholds *JudgeThresholds `json:"thresholds,omitempty"`
	// Metrics are the comparisons, scored together.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	Metrics []JudgeComparison `json:"metrics"`
}

// JudgePrometheus is the Prometheus HTTP API both sides of every comparison are asked,
// configured as a prometheus metric's.
type JudgePrometheus struct {
	// Address is the API's base URL. Unset: the controller's --prometheus-address.
	// +optional
	Address string `json:"address,omitempty"`
	// Timeout bounds each query. Default 30s.
	// +optional
	Timeout DurationString `json:"timeout,omitempty"`
	// Headers are sent with every query, e.g. X-Scope-OrgID for a Mimir tenant.
	// +optional
	Headers []Header `json:"headers,omitempty"`
	// Auth configures authentication and TLS.
	// +optional
	Auth *HTTPAuth `json:"auth,omitempty"`
}

// JudgeThresholds are the scores, from 0 to 100, a judge measurement needs.
type JudgeThresholds struct {
	// Pass is the score at or above which a measurement is Successful.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Pass float64 `json:"pass"`
	// Marginal is the score at or above which a measurement below pass is Inconclusive;
	// below it, Failed.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Marginal float64 `json:"marginal"`
}

// JudgeComparison is one metric the judge compares, canary against baseline. Series are
// paired by their labels, one comparison per label set, so aggregate away the labels
// that tell the two sides apart (the revision or pod-template-hash); a label set one side
// lacks is compared with no data.
type JudgeComparison struct {
	// Name identifies the comparison in the score and in status.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Baseline is the PromQL of the stable (or fresh baseline) side; {{args.name}} is
	// replaced before it runs.
	// +kubebuilder:validation:MinLength=1
	Baseline string `json:"baseline"`
	// Canary is the PromQL of the canary side, usually the baseline's with the canary's
	// revision.
	// +kubebuilder:validation:MinLength=1
	Canary string `json:"canary"`
	// Direction is the change of the canary that fails the comparison. Default either.
	// +optional
	// +kubebuilder:validation:Enum=increase;decrease;either
	Direction string `json:"direction,omitempty"`
	// Critical fails the whole measurement when this comparison fails beyond its critical
	// effect size, has no data or cannot be judged.
	// +optional
	Critical bool `json:"critical,omitempty"`
	// MustHaveData counts no data as a failure in the comparison's group.
	// +optional
	MustHaveData bool `json:"mustHaveData,omitempty"`
	// EffectSize is how the size of a change is measured against the limits below:
	// meanRatio (mean canary / mean baseline) or cles (the chance a canary point exceeds
	// a baseline point). Default meanRatio.
	// +optional
	// +kubebuilder:validation:Enum=meanRatio;cles
	EffectSize string `json:"effectSize,omitempty"`
	// AllowedIncrease is the effect size an increase must reach to fail, e.g. 1.2 to
	// tolerate 20% more. Default 1 (meanRatio) or 0.5 (cles).
	// +optional
	AllowedIncrease *float64 `json:"allowedIncrease,omitempty"`
	// AllowedDecrease is the effect size a decrease must reach to fail, e.g. 0.8.
	// Default 1 (meanRatio) or 0.5 (cles).
	// +optional
	AllowedDecrease *float64 `json:"allowedDecrease,omitempty"`
	// CriticalIncrease is the effect size of an increase that fails a critical comparison
	// critically. Default 1 (meanRatio) or 0.5 (cles).
	// +optional
	CriticalIncrease *float64 `json:"criticalIncrease,omitempty"`
	// CriticalDecrease is the effect size of a decrease that fails a critical comparison
	// critically. Default 1 (meanRatio) or 0.5 (cles).
	// +optional
	CriticalDecrease *float64 `json:"criticalDecrease,omitempty"`
	// NaNStrategy is what NaN points, and the steps a side has no point at, become:
	// remove drops them, replace counts them as 0 (for counters where no series means
	// nothing happened). Default remove.
	// +optional
	// +kubebuilder:validation:Enum=remove;replace
	NaNStrategy string `json:"nanStrategy,omitempty"`
	// Outliers is keep or remove: remove drops the points of each side outside
	// [min(P1, Q1 - f*IQR), max(P99, Q3 + f*IQR)]. Default keep.
	// +optional
	// +kubebuilder:validation:Enum=keep;remove
	Outliers string `json:"outliers,omitempty"`
	// OutlierFactor is f in the outlier fences. Default 3.
	// +optional
	// +kubebuilder:validation:Minimum=0
	OutlierFactor *float64 `json:"outlierFactor,omitempty"`
	// Group scores this comparison with the others of the same group; comparisons
	// without one share a group.
	// +optional
	Group string `json:"group,omitempty"`
	// Weight is the group's share of the score in percent; comparisons of one group that
	// set it must agree. Groups without a weight share what the weights leave of 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *float64 `json:"weight,omitempty"`
	// Muted comparisons are judged and shown, never scored.
	// +optional
	Muted bool `json:"muted,omitempty"`
}
