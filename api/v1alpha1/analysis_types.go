package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// AnalysisTemplateSpec is a reusable set of metrics. Field names and shapes follow Argo
// Rollouts so an Argo AnalysisTemplate converts by changing its apiVersion.
// +kubebuilder:validation:XValidation:rule="(has(self.metrics) && size(self.metrics) > 0) || (has(self.templates) && size(self.templates) > 0)",message="at least one metric or one included template is required"
type AnalysisTemplateSpec struct {
	// Metrics are measured independently; the run's verdict is the worst of them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Metrics []Metric `json:"metrics,omitempty"`
	// Args are the template's parameters, referenced as {{args.name}} in any string of a
	// metric but its name. An arg without a value must be supplied by whoever creates the
	// run.
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
	// Templates includes other templates, as Argo Rollouts' spec.templates does: a run
	// built from this template also gets their metrics, args, dryRun and
	// measurementRetention, and those of the templates they include. A template included
	// more than once counts once; one that includes itself, directly or not, is an error.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Templates []RolloutAnalysisTemplate `json:"templates,omitempty"`
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
	// ValueFrom reads the value from a Secret in the run's namespace (masked in status,
	// events and logs) or from a field of the Rollout that creates the run.
	// +optional
	ValueFrom *ArgumentValueFrom `json:"valueFrom,omitempty"`
}

// ArgumentValueFrom is where an argument's value comes from.
// +kubebuilder:validation:XValidation:rule="(has(self.secretKeyRef) ? 1 : 0) + (has(self.fieldRef) ? 1 : 0) == 1",message="exactly one of secretKeyRef and fieldRef must be set"
type ArgumentValueFrom struct {
	// SecretKeyRef names a key of a Secret in the run's namespace.
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
	// FieldRef takes the value from the Rollout's metadata when the Rollout creates the
	// run, as Argo Rollouts does. A run created by other means must give a value instead.
	// +optional
	FieldRef *FieldRef `json:"fieldRef,omitempty"`
}

// FieldRef selects a field of the Rollout's metadata.
type FieldRef struct {
	// FieldPath is metadata.name, metadata.namespace, metadata.uid,
	// metadata.labels['KEY'] or metadata.annotations['KEY'].
	// +kubebuilder:validation:MinLength=1
	FieldPath string `json:"fieldPath"`
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
	// MetricName is a metric's name, "*" for all of them, or a regular expression matched
	// against whole names, such as Argo Rollouts' ".*". It must select at least one
	// metric.
	// +kubebuilder:validation:MinLength=1
	MetricName string `json:"metricName"`
}

// MeasurementRetention sets how many measurements of a metric status keeps.
type MeasurementRetention struct {
	// MetricName is a metric's name, "*" for all of them, or a regular expression matched
	// against whole names, such as ".*". A rule naming a metric exactly wins; otherwise
	// the last rule that matches. It must select at least one metric.
	// +kubebuilder:validation:MinLength=1
	MetricName string `json:"metricName"`
	// Limit is the number of most recent measurements kept.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Limit int32 `json:"limit"`
}

// DurationString is a Go duration such as "30s", "5m" or "1h30m", or a text with
// {{args.name}} that renders to one.
// +kubebuilder:validation:Pattern=`^(([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|.*\{\{.*\}\}.*)$`
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

// Metric is one thing to measure and how to judge it. Every string of a metric but its
// name may hold {{args.name}}, rendered before the metric is checked, as Argo Rollouts
// does; so the limits and the count take an integer or a string that renders to one.
// +kubebuilder:validation:XValidation:rule="!has(self.count) || type(self.count) == string || self.count <= 1 || has(self.interval)",message="count > 1 requires interval"
// +kubebuilder:validation:XValidation:rule="!has(self.count) || type(self.count) == string || self.count >= 0",message="count may not be negative"
// +kubebuilder:validation:XValidation:rule="!has(self.failureLimit) || type(self.failureLimit) == string || self.failureLimit >= -1",message="failureLimit is -1 (disabled) or more"
// +kubebuilder:validation:XValidation:rule="!has(self.inconclusiveLimit) || type(self.inconclusiveLimit) == string || self.inconclusiveLimit >= 0",message="inconclusiveLimit may not be negative"
// +kubebuilder:validation:XValidation:rule="!has(self.consecutiveErrorLimit) || type(self.consecutiveErrorLimit) == string || self.consecutiveErrorLimit >= 0",message="consecutiveErrorLimit may not be negative"
// +kubebuilder:validation:XValidation:rule="!has(self.consecutiveSuccessLimit) || type(self.consecutiveSuccessLimit) == string || self.consecutiveSuccessLimit >= 0",message="consecutiveSuccessLimit may not be negative"
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
	// the metric ends. Unset or 0: 1 without an interval; with an interval, measure until
	// another limit ends the metric or the run is terminated.
	// +optional
	Count *intstr.IntOrString `json:"count,omitempty"`
	// FailureLimit is how many Failed measurements are tolerated; one more fails the
	// metric. Default 0; -1 disables it (as in Argo Rollouts, for a metric decided by
	// consecutiveSuccessLimit alone).
	// +optional
	FailureLimit *intstr.IntOrString `json:"failureLimit,omitempty"`
	// InconclusiveLimit is how many Inconclusive measurements are tolerated; one more
	// makes the metric Inconclusive. Default 0.
	// +optional
	InconclusiveLimit *intstr.IntOrString `json:"inconclusiveLimit,omitempty"`
	// ConsecutiveErrorLimit is how many Error measurements in a row are tolerated; one
	// more makes the metric Error. Default 4.
	// +optional
	ConsecutiveErrorLimit *intstr.IntOrString `json:"consecutiveErrorLimit,omitempty"`
	// ConsecutiveSuccessLimit ends the metric Successful after this many Successful
	// measurements in a row. Unset or 0: not used. With a count, as in Argo Rollouts,
	// reaching the count without it is Failed when failureLimit is -1 and Inconclusive
	// otherwise.
	// +optional
	ConsecutiveSuccessLimit *intstr.IntOrString `json:"consecutiveSuccessLimit,omitempty"`
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

// MetricProvider holds exactly one provider. The Argo Rollouts providers promgate does not
// implement are accepted here so that the template's Valid condition, the run and lint can
// say what to use instead.
// +kubebuilder:validation:XValidation:rule="(has(self.prometheus) ? 1 : 0) + (has(self.web) ? 1 : 0) + (has(self.judge) ? 1 : 0) + (has(self.job) ? 1 : 0) + (has(self.datadog) ? 1 : 0) + (has(self.newRelic) ? 1 : 0) + (has(self.wavefront) ? 1 : 0) + (has(self.cloudWatch) ? 1 : 0) + (has(self.graphite) ? 1 : 0) + (has(self.influxdb) ? 1 : 0) + (has(self.skywalking) ? 1 : 0) + (has(self.kayenta) ? 1 : 0) + (has(self.plugin) ? 1 : 0) == 1",message="exactly one provider (prometheus, web, judge or job) must be set"
type MetricProvider struct {
	// Prometheus runs a PromQL query against anything speaking the Prometheus HTTP API.
	// +optional
	Prometheus *PrometheusMetric `json:"prometheus,omitempty"`
	// Web fetches JSON over HTTP and hands the value a JSONPath picks to the conditions.
	// +optional
	Web *WebMetric `json:"web,omitempty"`
	// Judge compares a canary's series with a baseline's and scores them (Kayenta's
	// method); it decides the measurement itself, so the metric takes no conditions.
	// +optional
	Judge *JudgeMetric `json:"judge,omitempty"`
	// Job runs a Kubernetes Job per measurement: Complete is Successful, Failed is Failed.
	// +optional
	Job *JobMetric `json:"job,omitempty"`

	// Datadog is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Datadog *apiextensionsv1.JSON `json:"datadog,omitempty"`
	// NewRelic is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	NewRelic *apiextensionsv1.JSON `json:"newRelic,omitempty"`
	// Wavefront is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Wavefront *apiextensionsv1.JSON `json:"wavefront,omitempty"`
	// CloudWatch is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	CloudWatch *apiextensionsv1.JSON `json:"cloudWatch,omitempty"`
	// Graphite is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Graphite *apiextensionsv1.JSON `json:"graphite,omitempty"`
	// Influxdb is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Influxdb *apiextensionsv1.JSON `json:"influxdb,omitempty"`
	// SkyWalking is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	SkyWalking *apiextensionsv1.JSON `json:"skywalking,omitempty"`
	// Kayenta is not supported: promgate reports what to use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Kayenta *apiextensionsv1.JSON `json:"kayenta,omitempty"`
	// Plugin (Argo Rollouts' metric plugins) is not supported: promgate reports what to
	// use instead.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Plugin *apiextensionsv1.JSON `json:"plugin,omitempty"`
}

// PrometheusMetric is a PromQL query.
// +kubebuilder:validation:XValidation:rule="!(has(self.range) && has(self.rangeQuery))",message="range and rangeQuery are mutually exclusive"
type PrometheusMetric struct {
	// Address is the base URL of the Prometheus HTTP API (Prometheus, Thanos, Mimir,
	// VictoriaMetrics, Amazon Managed Service for Prometheus). Unset: the controller's
	// --prometheus-address.
	// +optional
	Address string `json:"address,omitempty"`
	// Query is PromQL. Its syntax is checked before a run starts.
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
	// Timeout bounds each query: a duration such as "30s" (preferred), or an integer
	// number of seconds as Argo Rollouts writes it (timeout: 40). Default 30s.
	// +optional
	Timeout *intstr.IntOrString `json:"timeout,omitempty"`
	// Range makes this a range query over the window ending at the measurement time; the
	// condition sees the last value of each series in result and every point in
	// series[].values. Preferred over rangeQuery for such a window: it needs no
	// expressions.
	// +optional
	Range *PrometheusRange `json:"range,omitempty"`
	// RangeQuery is Argo Rollouts' range query: start and end are expr expressions such as
	// now() - duration("10m"), evaluated at each measurement (now() is the measurement
	// time).
	// +optional
	RangeQuery *PrometheusRangeQuery `json:"rangeQuery,omitempty"`
	// Headers are sent with every query, e.g. X-Scope-OrgID for a Mimir tenant.
	// +optional
	Headers []Header `json:"headers,omitempty"`
	// Insecure skips the server certificate check, as Argo Rollouts' field does; the same
	// as auth.tls.insecureSkipVerify.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
	// Auth configures authentication with credentials in Secrets, and TLS. Preferred over
	// authentication.
	// +optional
	Auth *HTTPAuth `json:"auth,omitempty"`
	// Authentication is Argo Rollouts' authentication, with credentials written inline
	// (usually {{args.name}} of an arg read from a Secret).
	// +optional
	Authentication *Authentication `json:"authentication,omitempty"`
}

// PrometheusRange is a range query window.
type PrometheusRange struct {
	// Window is how far back the range starts, e.g. "5m".
	Window DurationString `json:"window"`
	// Step is the resolution. Default 1m.
	// +optional
	Step DurationString `json:"step,omitempty"`
}

// PrometheusRangeQuery is a range query whose bounds are expr expressions.
type PrometheusRangeQuery struct {
	// Start is an expr expression returning a time, e.g. now() - duration("10m").
	// +kubebuilder:validation:MinLength=1
	Start string `json:"start"`
	// End is an expr expression returning a time. Default now().
	// +optional
	End string `json:"end,omitempty"`
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

// WebMetric fetches a JSON document and hands the value its JSONPath picks to the
// conditions as JSON decodes it: a number (a scalar result, as before), a list of numbers
// (a vector, result[0]), or a bool, a string, an object or a list as they are
// (result == true, result.ok && result.successPercent >= 0.9).
// +kubebuilder:validation:XValidation:rule="!(has(self.body) && has(self.jsonBody))",message="body and jsonBody are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="!(has(self.timeout) && has(self.timeoutSeconds))",message="timeout and timeoutSeconds are mutually exclusive"
type WebMetric struct {
	// URL to fetch.
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`
	// Method is GET, POST or PUT. Default GET.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST;PUT
	// +kubebuilder:default=GET
	Method string `json:"method,omitempty"`
	// Headers are sent with the request.
	// +optional
	Headers []Header `json:"headers,omitempty"`
	// Body is sent with POST or PUT, as application/json unless a header says otherwise.
	// +optional
	Body string `json:"body,omitempty"`
	// JSONBody is a body written as YAML or JSON, sent as JSON with POST or PUT.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	JSONBody *apiextensionsv1.JSON `json:"jsonBody,omitempty"`
	// JSONPath picks the value, in kubectl's JSONPath syntax, e.g. "{$.data.ratio}".
	// Default "{$}", the whole document.
	// +optional
	JSONPath string `json:"jsonPath,omitempty"`
	// Timeout bounds the request (preferred). Default 30s.
	// +optional
	Timeout DurationString `json:"timeout,omitempty"`
	// TimeoutSeconds is Argo Rollouts' timeout, in seconds.
	// +optional
	// +kubebuilder:validation:Minimum=1
	TimeoutSeconds int64 `json:"timeoutSeconds,omitempty"`
	// Insecure skips the server certificate check, as Argo Rollouts' field does; the same
	// as auth.tls.insecureSkipVerify.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
	// Auth configures authentication with credentials in Secrets, and TLS. Preferred over
	// authentication.
	// +optional
	Auth *HTTPAuth `json:"auth,omitempty"`
	// Authentication is Argo Rollouts' authentication, with credentials written inline
	// (usually {{args.name}} of an arg read from a Secret).
	// +optional
	Authentication *Authentication `json:"authentication,omitempty"`
}

// JobMetric runs a Kubernetes Job per measurement in the run's namespace, owned by the
// run, as Argo Rollouts' job provider does: the Job completing is a Successful
// measurement and the Job failing a Failed one, with the last lines of its log in the
// message. Jobs are deleted when the run ends.
type JobMetric struct {
	// Metadata holds labels and annotations given to every Job.
	// +optional
	Metadata JobMetadata `json:"metadata,omitempty"`
	// Spec is the Job's spec (batch/v1 JobSpec). It is checked before a run starts; the
	// CRD leaves it unchecked, as the pod template's schema would make it several times
	// its size.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Spec batchv1.JobSpec `json:"spec"`
	// Timeout bounds a measurement: a Job still running after it is deleted and the
	// measurement is Error. Unset: only the Job's activeDeadlineSeconds bounds it.
	// +optional
	Timeout DurationString `json:"timeout,omitempty"`
}

// JobMetadata is what a Job takes from its template's metadata.
type JobMetadata struct {
	// Labels are added to every Job.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are added to every Job.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
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

// Authentication is Argo Rollouts' authentication: credentials written in the template,
// usually as {{args.name}} of an arg read from a Secret (masked like it). At most one
// kind; promgate's auth, whose credentials stay in Secrets, is preferred.
// +kubebuilder:validation:XValidation:rule="(has(self.sigv4) ? 1 : 0) + (has(self.oauth2) ? 1 : 0) + (has(self.basicAuth) ? 1 : 0) <= 1",message="at most one of sigv4, oauth2 and basicAuth"
type Authentication struct {
	// SigV4 signs requests with AWS Signature Version 4, for Amazon Managed Service for
	// Prometheus. Credentials come from the controller's AWS credential chain
	// (environment, web identity, instance role), as in Argo Rollouts.
	// +optional
	SigV4 *SigV4 `json:"sigv4,omitempty"`
	// OAuth2 fetches a token with the client-credentials grant.
	// +optional
	OAuth2 *InlineOAuth2 `json:"oauth2,omitempty"`
	// BasicAuth sends HTTP basic authentication.
	// +optional
	BasicAuth *InlineBasicAuth `json:"basicAuth,omitempty"`
}

// SigV4 is AWS Signature Version 4 signing.
type SigV4 struct {
	// Region is the AWS region; unset: the credential chain's.
	// +optional
	Region string `json:"region,omitempty"`
	// Profile is a profile of the AWS shared configuration.
	// +optional
	Profile string `json:"profile,omitempty"`
	// RoleARN is a role assumed to sign.
	// +optional
	RoleARN string `json:"roleArn,omitempty"`
}

// InlineOAuth2 is the client-credentials grant with its secret written in the template.
type InlineOAuth2 struct {
	// TokenURL is the token endpoint.
	// +kubebuilder:validation:MinLength=1
	TokenURL string `json:"tokenUrl"`
	// ClientID identifies the client.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientId"`
	// ClientSecret is the client secret.
	// +kubebuilder:validation:MinLength=1
	ClientSecret string `json:"clientSecret"`
	// Scopes are requested with the token.
	// +optional
	Scopes []string `json:"scopes,omitempty"`
}

// InlineBasicAuth is a user name and a password written in the template.
type InlineBasicAuth struct {
	// Username is sent as is.
	// +kubebuilder:validation:MinLength=1
	Username string `json:"username"`
	// Password is sent as is.
	// +optional
	Password string `json:"password,omitempty"`
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
	// +kubebuilder:validation:MaxItems=256
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
