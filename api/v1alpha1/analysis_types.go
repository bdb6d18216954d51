package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnalysisTemplateSpec is a reusable set of metrics. Field names follow Argo Rollouts so an
// Argo AnalysisTemplate converts by changing its apiVersion.
type AnalysisTemplateSpec struct {
	// Metrics are measured independently; the run's verdict is the worst of them.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	Metrics []Metric `json:"metrics"`
	// Args are the template's parameters, referenced in queries as {{args.name}}. An arg
	// without a value must be supplied by whoever creates the run.
	// +optional
	// +listType=map
	// +listMapKey=name
	Args []Argument `json:"args,omitempty"`
	// DryRun lists metrics that are measured and reported but never decide the verdict.
	// +optional
	DryRun []DryRun `json:"dryRun,omitempty"`
	// MeasurementRetention overrides, per metric, how many measurements status keeps
	// (default 10).
	// +optional
	MeasurementRetention []MeasurementRetention `json:"measurementRetention,omitempty"`
}

// AnalysisTemplateStatus tells whether the template can be used.
type AnalysisTemplateStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions hold Valid: True when every query parses, every condition compiles and
	// the limits are consistent; False with the metric and field at fault otherwise.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConditionValid is the template condition type saying whether it can be used.
const ConditionValid = "Valid"

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=at,categories=promgate
// +kubebuilder:printcolumn:name="VALID",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="MESSAGE",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Valid")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`

// AnalysisTemplate is a namespaced, reusable set of metrics.
type AnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AnalysisTemplateSpec   `json:"spec"`
	Status AnalysisTemplateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AnalysisTemplateList is a list of AnalysisTemplates.
type AnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisTemplate `json:"items"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cat,categories=promgate
// +kubebuilder:printcolumn:name="VALID",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="MESSAGE",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Valid")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterAnalysisTemplate is an AnalysisTemplate shared by every namespace.
type ClusterAnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AnalysisTemplateSpec   `json:"spec"`
	Status AnalysisTemplateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterAnalysisTemplateList is a list of ClusterAnalysisTemplates.
type ClusterAnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAnalysisTemplate `json:"items"`
}

// Argument is a template parameter.
// +kubebuilder:validation:XValidation:rule="!(has(self.value) && has(self.valueFrom))",message="value and valueFrom are mutually exclusive"
type Argument struct {
	// Name is how queries refer to it: {{args.name}}.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_.-]*$`
	Name string `json:"name"`
	// Value is the literal value; unset means the run's creator must supply one.
	// +optional
	Value *string `json:"value,omitempty"`
	// ValueFrom reads the value from a Secret in the run's namespace. Such values are
	// masked in status, events and logs.
	// +optional
	ValueFrom *ArgumentValueFrom `json:"valueFrom,omitempty"`
}

// ArgumentValueFrom is where an argument's value comes from.
type ArgumentValueFrom struct {
	// SecretKeyRef names a key of a Secret in the run's namespace.
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef"`
}

// SecretKeySelector names one key of a Secret in the same namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// DryRun marks metrics whose verdict is reported but never decides.
type DryRun struct {
	// MetricName is a metric's name, or "*" for all of them.
	// +kubebuilder:validation:MinLength=1
	MetricName string `json:"metricName"`
}

// MeasurementRetention sets how many measurements of a metric status keeps.
type MeasurementRetention struct {
	// MetricName is a metric's name, or "*" for all of them.
	// +kubebuilder:validation:MinLength=1
	MetricName string `json:"metricName"`
	// Limit is the number of most recent measurements kept.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Limit int32 `json:"limit"`
}

// DurationString is a Go duration such as "30s", "5m" or "1h30m".
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
type DurationString string

// NoDataPolicy says what a measurement with no usable data (an empty result, or only NaN
// and ±Inf) counts as.
// +kubebuilder:validation:Enum=Inconclusive;Failed;Error;Evaluate
type NoDataPolicy string

const (
	// NoDataInconclusive counts no data as Inconclusive: the release pauses (default).
	NoDataInconclusive NoDataPolicy = "Inconclusive"
	// NoDataFailed counts no data as Failed.
	NoDataFailed NoDataPolicy = "Failed"
	// NoDataError counts no data as an Error (provider-like, does not count toward count).
	NoDataError NoDataPolicy = "Error"
	// NoDataEvaluate hands the empty or NaN result to the conditions.
	NoDataEvaluate NoDataPolicy = "Evaluate"
)

// Metric is one thing to measure and how to judge it.
// +kubebuilder:validation:XValidation:rule="!has(self.count) || self.count <= 1 || has(self.interval)",message="count > 1 requires interval"
// +kubebuilder:validation:XValidation:rule="!has(self.consecutiveSuccessLimit) || !has(self.count) || self.count == 0 || self.consecutiveSuccessLimit <= self.count",message="consecutiveSuccessLimit cannot exceed count"
type Metric struct {
	// Name identifies the metric within the template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Interval between measurements. Unset: one measurement (unless count says more).
	// +optional
	Interval DurationString `json:"interval,omitempty"`
	// InitialDelay waits this long after the run starts before the first measurement.
	// +optional
	InitialDelay DurationString `json:"initialDelay,omitempty"`
	// Count is the number of measurements (Error measurements do not count) after which
	// the metric is Successful. Unset: 1 without an interval; with an interval, measure
	// until another limit ends the metric or the run is terminated.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Count *int32 `json:"count,omitempty"`
	// FailureLimit is how many Failed measurements are tolerated; one more fails the
	// metric. Default 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailureLimit *int32 `json:"failureLimit,omitempty"`
	// InconclusiveLimit is how many Inconclusive measurements are tolerated; one more
	// makes the metric Inconclusive. Default 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InconclusiveLimit *int32 `json:"inconclusiveLimit,omitempty"`
	// ConsecutiveErrorLimit is how many Error measurements in a row are tolerated; one
	// more makes the metric Error. Default 4.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ConsecutiveErrorLimit *int32 `json:"consecutiveErrorLimit,omitempty"`
	// ConsecutiveSuccessLimit ends the metric Successful after this many Successful
	// measurements in a row. Unset: not used.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConsecutiveSuccessLimit *int32 `json:"consecutiveSuccessLimit,omitempty"`
	// SuccessCondition is an expr-lang expression over result, value and series that is
	// true when the measurement is good. With only a successCondition, false is Failed.
	// +optional
	SuccessCondition string `json:"successCondition,omitempty"`
	// FailureCondition is an expr-lang expression that is true when the measurement is
	// bad. With only a failureCondition, false is Successful; with both, failure wins and
	// neither true is Inconclusive.
	// +optional
	FailureCondition string `json:"failureCondition,omitempty"`
	// NoData decides what an empty, NaN or ±Inf result counts as. Default Inconclusive:
	// no data never promotes a release.
	// +optional
	// +kubebuilder:default=Inconclusive
	NoData NoDataPolicy `json:"noData,omitempty"`
	// Provider is where the measurement comes from.
	Provider MetricProvider `json:"provider"`
}

// MetricProvider holds exactly one provider.
// +kubebuilder:validation:XValidation:rule="(has(self.prometheus) ? 1 : 0) + (has(self.web) ? 1 : 0) + (has(self.judge) ? 1 : 0) == 1",message="exactly one provider (prometheus, web or judge) must be set"
type MetricProvider struct {
	// Prometheus runs a PromQL query against anything speaking the Prometheus HTTP API.
	// +optional
	Prometheus *PrometheusMetric `json:"prometheus,omitempty"`
	// Web fetches JSON over HTTP and picks a value with a JSONPath.
	// +optional
	Web *WebMetric `json:"web,omitempty"`
	// Judge compares a canary's series with a baseline's and scores them (Kayenta's
	// method); it decides the measurement itself, so the metric takes no conditions.
	// +optional
	Judge *JudgeMetric `json:"judge,omitempty"`
}

// PrometheusMetric is a PromQL query.
type PrometheusMetric struct {
	// Address is the base URL of the Prometheus HTTP API (Prometheus, Thanos, Mimir,
	// VictoriaMetrics). Unset: the controller's --prometheus-address.
	// +optional
	Address string `json:"address,omitempty"`
	// Query is PromQL; {{args.name}} is replaced before it runs. Its syntax is checked
	// before a run starts.
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
	// Timeout bounds each query. Default 30s.
	// +optional
	Timeout DurationString `json:"timeout,omitempty"`
	// Range makes this a range query ending at the measurement time; the condition sees
	// the last value of each series in result and every point in series[].values.
	// +optional
	Range *PrometheusRange `json:"range,omitempty"`
	// Headers are sent with every query, e.g. X-Scope-OrgID for a Mimir tenant.
	// +optional
	Headers []Header `json:"headers,omitempty"`
	// Auth configures authentication and TLS.
	// +optional
	Auth *HTTPAuth `json:"auth,omitempty"`
}

// PrometheusRange is a range query window.
type PrometheusRange struct {
	// Window is how far back the range starts, e.g. "5m".
	Window DurationString `json:"window"`
	// Step is the resolution. Default 1m.
	// +optional
	Step DurationString `json:"step,omitempty"`
}

// Header is an HTTP header.
type Header struct {
	// Key is the header name.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Value is the header value.
	Value string `json:"value"`
}

// WebMetric fetches a JSON document and picks a number from it.
type WebMetric struct {
	// URL to fetch; {{args.name}} is replaced before it runs.
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`
	// Method is GET or POST. Default GET.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST
	// +kubebuilder:default=GET
	Method string `json:"method,omitempty"`
	// Headers are sent with the request.
	// +optional
	Headers []Header `json:"headers,omitempty"`
	// Body is sent with POST.
	// +optional
	Body string `json:"body,omitempty"`
	// JSONPath picks the value, in kubectl's JSONPath syntax, e.g. "{$.data.ratio}".
	// +kubebuilder:validation:MinLength=1
	JSONPath string `json:"jsonPath"`
	// Timeout bounds the request. Default 30s.
	// +optional
	Timeout DurationString `json:"timeout,omitempty"`
	// Auth configures authentication and TLS.
	// +optional
	Auth *HTTPAuth `json:"auth,omitempty"`
}

// HTTPAuth is authentication and TLS for a provider; secrets come from Secrets in the
// run's namespace (for a ClusterAnalysisTemplate, the namespace of the run using it).
// +kubebuilder:validation:XValidation:rule="(has(self.bearerTokenSecret) ? 1 : 0) + (has(self.basicAuth) ? 1 : 0) + (has(self.oauth2) ? 1 : 0) <= 1",message="at most one of bearerTokenSecret, basicAuth and oauth2"
type HTTPAuth struct {
	// BearerTokenSecret sends "Authorization: Bearer <token>".
	// +optional
	BearerTokenSecret *SecretKeySelector `json:"bearerTokenSecret,omitempty"`
	// BasicAuth sends HTTP basic authentication.
	// +optional
	BasicAuth *BasicAuth `json:"basicAuth,omitempty"`
	// OAuth2 fetches a token with the client-credentials grant.
	// +optional
	OAuth2 *OAuth2 `json:"oauth2,omitempty"`
	// TLS configures the server's CA, a client certificate and the server name.
	// +optional
	TLS *TLSConfig `json:"tls,omitempty"`
}

// BasicAuth is a user name and a password from a Secret.
type BasicAuth struct {
	// Username is sent as is.
	// +kubebuilder:validation:MinLength=1
	Username string `json:"username"`
	// PasswordSecret holds the password.
	PasswordSecret SecretKeySelector `json:"passwordSecret"`
}

// OAuth2 is the client-credentials grant.
type OAuth2 struct {
	// ClientID identifies the client.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientId"`
	// ClientSecret holds the client secret.
	ClientSecret SecretKeySelector `json:"clientSecret"`
	// TokenURL is the token endpoint.
	// +kubebuilder:validation:MinLength=1
	TokenURL string `json:"tokenUrl"`
	// Scopes are requested with the token.
	// +optional
	Scopes []string `json:"scopes,omitempty"`
	// EndpointParams are extra form parameters for the token request.
	// +optional
	EndpointParams map[string]string `json:"endpointParams,omitempty"`
}

// TLSConfig is TLS for a provider.
type TLSConfig struct {
	// CASecret holds the PEM CA bundle that signs the server's certificate.
	// +optional
	CASecret *SecretKeySelector `json:"caSecret,omitempty"`
	// CertSecret and KeySecret hold a PEM client certificate and its key.
	// +optional
	CertSecret *SecretKeySelector `json:"certSecret,omitempty"`
	// KeySecret holds the client certificate's PEM key.
	// +optional
	KeySecret *SecretKeySelector `json:"keySecret,omitempty"`
	// ServerName overrides the name checked in the server's certificate.
	// +optional
	ServerName string `json:"serverName,omitempty"`
	// InsecureSkipVerify disables server certificate checks. Default false.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// AnalysisTemplateRef names a template a run was built from.
type AnalysisTemplateRef struct {
	// Name of the template.
	Name string `json:"name"`
	// ClusterScope is true for a ClusterAnalysisTemplate.
	// +optional
	ClusterScope bool `json:"clusterScope,omitempty"`
}

// AnalysisRunSpec is one execution: metrics copied from templates, with resolved args.
type AnalysisRunSpec struct {
	// Metrics to measure.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	Metrics []Metric `json:"metrics"`
	// Args supply the values queries reference; every arg a query uses needs a value.
	// +optional
	// +listType=map
	// +listMapKey=name
	Args []Argument `json:"args,omitempty"`
	// DryRun lists metrics that are reported but never decide.
	// +optional
	DryRun []DryRun `json:"dryRun,omitempty"`
	// MeasurementRetention overrides how many measurements status keeps per metric.
	// +optional
	MeasurementRetention []MeasurementRetention `json:"measurementRetention,omitempty"`
	// Templates records where the metrics came from, for display.
	// +optional
	Templates []AnalysisTemplateRef `json:"templates,omitempty"`
	// Terminate stops measuring; the run ends with the verdict of what was measured.
	// +optional
	Terminate bool `json:"terminate,omitempty"`
	// TTLSecondsAfterFinished deletes the run this long after it ends. Unset: kept until
	// its owner deletes it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// AnalysisPhase is the phase of a run, a metric or a measurement. From best to worst:
// Successful < Inconclusive < Error < Failed.
// +kubebuilder:validation:Enum=Pending;Running;Successful;Inconclusive;Error;Failed
type AnalysisPhase string

const (
	// AnalysisPhasePending has not measured yet.
	AnalysisPhasePending AnalysisPhase = "Pending"
	// AnalysisPhaseRunning is measuring.
	AnalysisPhaseRunning AnalysisPhase = "Running"
	// AnalysisPhaseSuccessful passed.
	AnalysisPhaseSuccessful AnalysisPhase = "Successful"
	// AnalysisPhaseInconclusive could not decide (no data by default): a release pauses.
	AnalysisPhaseInconclusive AnalysisPhase = "Inconclusive"
	// AnalysisPhaseError could not measure: a release is aborted.
	AnalysisPhaseError AnalysisPhase = "Error"
	// AnalysisPhaseFailed measured a bad value: a release is aborted.
	AnalysisPhaseFailed AnalysisPhase = "Failed"
)

// Completed reports whether the phase is final.
func (p AnalysisPhase) Completed() bool {
	switch p {
	case AnalysisPhaseSuccessful, AnalysisPhaseInconclusive, AnalysisPhaseError, AnalysisPhaseFailed:
		return true
	}
	return false
}

// AnalysisRunStatus is the run's verdict and the evidence for it.
type AnalysisRunStatus struct {
	// Phase is the run's verdict so far.
	// +optional
	Phase AnalysisPhase `json:"phase,omitempty"`
	// Message says which metric decided, with which value and condition.
	// +optional
	Message string `json:"message,omitempty"`
	// StartedAt is when measuring began.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when the run reached its final phase.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// MetricResults hold each metric's counters and recent measurements.
	// +optional
	// +listType=map
	// +listMapKey=name
	MetricResults []MetricResult `json:"metricResults,omitempty"`
	// RunSummary counts metrics by phase (dry-run metrics excluded).
	// +optional
	RunSummary RunSummary `json:"runSummary,omitempty"`
	// DryRunSummary counts dry-run metrics by phase.
	// +optional
	DryRunSummary *RunSummary `json:"dryRunSummary,omitempty"`
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions hold Valid: whether the spec could be prepared (args, queries,
	// conditions), and if not, the metric and field at fault.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RunSummary counts metrics by phase.
type RunSummary struct {
	// Count is the number of metrics.
	Count int32 `json:"count,omitempty"`
	// Successful metrics.
	Successful int32 `json:"successful,omitempty"`
	// Failed metrics.
	Failed int32 `json:"failed,omitempty"`
	// Inconclusive metrics.
	Inconclusive int32 `json:"inconclusive,omitempty"`
	// Error metrics.
	Error int32 `json:"error,omitempty"`
}

// MetricResult is one metric's progress.
type MetricResult struct {
	// Name of the metric.
	Name string `json:"name"`
	// Phase of the metric.
	Phase AnalysisPhase `json:"phase"`
	// Message explains the phase: the deciding value and condition.
	// +optional
	Message string `json:"message,omitempty"`
	// DryRun is true when the metric does not decide.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// Count is the number of measurements that count (all but Error).
	// +optional
	Count int32 `json:"count,omitempty"`
	// Successful measurements.
	// +optional
	Successful int32 `json:"successful,omitempty"`
	// Failed measurements.
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// Inconclusive measurements.
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`
	// Error measurements.
	// +optional
	Error int32 `json:"error,omitempty"`
	// ConsecutiveError is the current run of Error measurements.
	// +optional
	ConsecutiveError int32 `json:"consecutiveError,omitempty"`
	// ConsecutiveSuccess is the current run of Successful measurements.
	// +optional
	ConsecutiveSuccess int32 `json:"consecutiveSuccess,omitempty"`
	// Measurements are the most recent measurements, oldest first, bounded by the
	// metric's retention.
	// +optional
	Measurements []Measurement `json:"measurements,omitempty"`
}

// Measurement is one provider call and its judgement.
type Measurement struct {
	// Phase of this measurement.
	Phase AnalysisPhase `json:"phase"`
	// Value is the shaped result, e.g. "0.97" or "[0.93, 0.95]"; empty when nothing came
	// back.
	// +optional
	Value string `json:"value,omitempty"`
	// Message explains the phase: the condition that decided, no data, or the error.
	// +optional
	Message string `json:"message,omitempty"`
	// StartedAt is the evaluation time the query used (aligned so runs can share it).
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// FinishedAt is when the result arrived.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Warnings are the provider's warnings (e.g. PromQL annotations).
	// +optional
	Warnings []string `json:"warnings,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ar,categories=promgate
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="TEMPLATE",type=string,JSONPath=`.spec.templates[0].name`
// +kubebuilder:printcolumn:name="MESSAGE",type=string,priority=1,JSONPath=`.status.message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`

// AnalysisRun is one execution of one or more templates with resolved args.
type AnalysisRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AnalysisRunSpec   `json:"spec"`
	Status AnalysisRunStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AnalysisRunList is a list of AnalysisRuns.
type AnalysisRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisRun `json:"items"`
}
