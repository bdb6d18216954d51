package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RolloutSpec is the release policy for an existing workload. The workload is not
// replaced: the Rollout works beside it, as OpenKruise Rollouts does.
type RolloutSpec struct {
	// WorkloadRef is the Deployment or StatefulSet this Rollout releases.
	WorkloadRef WorkloadRef `json:"workloadRef"`
	// Strategy is how a new revision is released.
	Strategy RolloutStrategy `json:"strategy"`
	// Analysis runs in the background across steps; its verdict is handled like a step's.
	// +optional
	Analysis *BackgroundAnalysis `json:"analysis,omitempty"`
	// AbortOn aborts a release when a matching Alertmanager alert fires.
	// +optional
	AbortOn *AbortOn `json:"abortOn,omitempty"`
	// ReleaseWindow holds new revisions until the window opens and, inside it, promotes
	// through pauses without a human.
	// +optional
	ReleaseWindow *ReleaseWindow `json:"releaseWindow,omitempty"`
	// Disabled stops managing the workload: a release in progress is undone (Deployment,
	// Services and routes restored) and new revisions roll out as plain Deployments do.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Paused is a human's hold: while true no step is promoted, by time, window or
	// analysis. Analyses go on measuring and their verdicts are recorded; a Failed or
	// Error verdict, an alert or an abort still aborts. Phase Paused says so until it is
	// set back to false.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// Notify posts each release's report as JSON to a webhook when the release ends.
	// +optional
	Notify *Notify `json:"notify,omitempty"`
}

// Notify is where release reports are sent.
type Notify struct {
	// URLSecret holds the webhook URL (it often carries a token, hence a Secret).
	URLSecret SecretKeySelector `json:"urlSecret"`
}

// WorkloadRef names the workload in the Rollout's namespace.
// +kubebuilder:validation:XValidation:rule="self.apiVersion == 'apps/v1'",message="only apps/v1 Deployment and StatefulSet are supported"
type WorkloadRef struct {
	// APIVersion of the workload: apps/v1.
	APIVersion string `json:"apiVersion"`
	// Kind of the workload: Deployment, or StatefulSet (canary steps only, moved by its
	// partition).
	// +kubebuilder:validation:Enum=Deployment;StatefulSet
	Kind string `json:"kind"`
	// Name of the workload.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RolloutStrategy holds exactly one strategy.
// +kubebuilder:validation:XValidation:rule="(has(self.blueGreen) ? 1 : 0) + (has(self.canary) ? 1 : 0) == 1",message="exactly one of blueGreen and canary must be set"
type RolloutStrategy struct {
	// BlueGreen runs the new version at full size beside the old one and moves traffic.
	// +optional
	BlueGreen *ReleaseStrategy `json:"blueGreen,omitempty"`
	// Canary adds new-version pods in batches and moves traffic by weight or header.
	// +optional
	Canary *ReleaseStrategy `json:"canary,omitempty"`
}

// Active returns the strategy that is set and its field path, spec.strategy.blueGreen or
// spec.strategy.canary; nil and spec.strategy when neither is.
func (s *RolloutStrategy) Active() (*ReleaseStrategy, *field.Path) {
	path := field.NewPath("spec", "strategy")
	switch {
	case s.BlueGreen != nil:
		return s.BlueGreen, path.Child("blueGreen")
	case s.Canary != nil:
		return s.Canary, path.Child("canary")
	}
	return nil, path
}

// ReleaseStrategy is the steps and traffic routing shared by blue-green and canary.
type ReleaseStrategy struct {
	// Steps are walked in order, 1-based.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	Steps []RolloutStep `json:"steps"`
	// TrafficRoutings are the Services, Ingresses, HTTPRoutes and VirtualServices whose
	// traffic moves.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	TrafficRoutings []TrafficRouting `json:"trafficRoutings,omitempty"`
	// AbortScaleDown scales the new version's pods away after an abort. Default false:
	// they are kept for diagnosis, with no traffic.
	// +optional
	AbortScaleDown bool `json:"abortScaleDown,omitempty"`
}

// RolloutStep is one stage of a release.
type RolloutStep struct {
	// Replicas of the new version, a count or a percentage of the workload's replicas.
	// Default: the previous step's, or 100% for blue-green and 1 for canary at step 1.
	// The controller rejects a negative count or a percentage over 100% with a condition
	// naming the step (a CEL rule here would exceed the API server's cost budget).
	// +optional
	// +kubebuilder:validation:XIntOrString
	Replicas *intstr.IntOrString `json:"replicas,omitempty"`
	// Traffic is the share of requests sent to the new version, "0%" to "100%". Unset:
	// unchanged from the previous step (0% at step 1).
	// +optional
	// +kubebuilder:validation:Pattern=`^(100|[1-9]?[0-9])%$`
	Traffic *string `json:"traffic,omitempty"`
	// Matches send requests carrying these headers to the new version whatever the
	// weight, e.g. X-Canary: always.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Matches []HTTPRouteMatch `json:"matches,omitempty"`
	// Pause waits after the step's analysis: {} for a human (or an open release window),
	// {duration: 30s} for a fixed time. Unset: no pause.
	// +optional
	Pause *RolloutPause `json:"pause,omitempty"`
	// Analysis measures the new version at this step; its verdict moves the release.
	// +optional
	Analysis *RolloutAnalysis `json:"analysis,omitempty"`
	// Baseline runs fresh pods of the stable template beside the step's new pods, sent
	// the same share of traffic, so that a judge compares pods of the same age and load
	// ({{args.baseline-hash}} is their pod-template-hash). They go when the step ends.
	// Deployments with Gateway API routing only.
	// +optional
	Baseline *RolloutBaseline `json:"baseline,omitempty"`
}

// RolloutBaseline is a step's fresh baseline: pods of the stable template in a ReplicaSet
// of the Rollout's, out of the stable Service, reached through "<service>-baseline".
type RolloutBaseline struct {
	// Replicas is how many baseline pods run, from 1 to the Deployment's replicas.
	// +kubebuilder:validation:Minimum=1
	Replicas int32 `json:"replicas"`
}

// HTTPRouteMatch is a set of header matches that must all hold.
type HTTPRouteMatch struct {
	// Headers that must all match.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Headers []HeaderMatch `json:"headers"`
}

// HeaderMatch matches one request header.
type HeaderMatch struct {
	// Type is Exact (default) or RegularExpression.
	// +optional
	// +kubebuilder:validation:Enum=Exact;RegularExpression
	// +kubebuilder:default=Exact
	Type string `json:"type,omitempty"`
	// Name of the header.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value to match.
	Value string `json:"value"`
}

// RolloutPause is a wait within a step.
type RolloutPause struct {
	// Duration to wait; unset waits for a human or an open release window.
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// RolloutAnalysis names the templates measured for a step, and their args.
type RolloutAnalysis struct {
	// Templates whose metrics form one AnalysisRun.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Templates []RolloutAnalysisTemplate `json:"templates"`
	// Args supply template args. Built-ins are always available: namespace, rollout,
	// service, stable-hash, canary-hash and, at a step with a baseline, baseline-hash.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Args []AnalysisRunArgument `json:"args,omitempty"`
}

// BackgroundAnalysis is analysis that runs across steps.
type BackgroundAnalysis struct {
	RolloutAnalysis `json:",inline"`
	// StartingStep is the 1-based step at which it starts. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	StartingStep *int32 `json:"startingStep,omitempty"`
}

// RolloutAnalysisTemplate references an AnalysisTemplate or ClusterAnalysisTemplate.
type RolloutAnalysisTemplate struct {
	// TemplateName is the template's name.
	// +kubebuilder:validation:MinLength=1
	TemplateName string `json:"templateName"`
	// ClusterScope selects a ClusterAnalysisTemplate.
	// +optional
	ClusterScope bool `json:"clusterScope,omitempty"`
}

// AnalysisRunArgument supplies one template arg.
// +kubebuilder:validation:XValidation:rule="(has(self.value) ? 1 : 0) + (has(self.valueFrom) ? 1 : 0) == 1",message="exactly one of value and valueFrom must be set"
type AnalysisRunArgument struct {
	// Name of the template arg.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value is a literal.
	// +optional
	Value *string `json:"value,omitempty"`
	// ValueFrom takes the value from a Secret or from the release.
	// +optional
	ValueFrom *AnalysisRunArgumentValueFrom `json:"valueFrom,omitempty"`
}

// AnalysisRunArgumentValueFrom is where a Rollout arg's value comes from.
// +kubebuilder:validation:XValidation:rule="(has(self.secretKeyRef) ? 1 : 0) + (has(self.podTemplateHashValue) ? 1 : 0) + (has(self.fieldRef) ? 1 : 0) == 1",message="exactly one of secretKeyRef, podTemplateHashValue and fieldRef must be set"
type AnalysisRunArgumentValueFrom struct {
	// SecretKeyRef reads a Secret key in the Rollout's namespace (masked everywhere).
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
	// PodTemplateHashValue is Stable, Canary or Baseline: that revision's
	// pod-template-hash (Baseline: the step's fresh baseline pods').
	// +optional
	// +kubebuilder:validation:Enum=Stable;Canary;Baseline
	PodTemplateHashValue string `json:"podTemplateHashValue,omitempty"`
	// FieldRef takes the value from the Rollout's metadata, e.g. metadata.labels['app'].
	// +optional
	FieldRef *FieldRef `json:"fieldRef,omitempty"`
}

// TrafficRouting is one entry point whose traffic the release moves.
// +kubebuilder:validation:XValidation:rule="(has(self.ingress) ? 1 : 0) + (has(self.gateway) ? 1 : 0) + (has(self.istio) ? 1 : 0) <= 1",message="ingress, gateway and istio are mutually exclusive in one traffic routing"
type TrafficRouting struct {
	// Service is the stable Service. Its selector is pinned to the stable revision during
	// a release and a "<service>-canary" copy selects the new one.
	// +kubebuilder:validation:MinLength=1
	Service string `json:"service"`
	// Ingress routes with an ingress-nginx canary Ingress (canary-weight, canary-by-header).
	// +optional
	Ingress *IngressTrafficRouting `json:"ingress,omitempty"`
	// Gateway routes with Gateway API HTTPRoute backend weights and header matches.
	// +optional
	Gateway *GatewayTrafficRouting `json:"gateway,omitempty"`
	// Istio routes with the weights and header matches of an Istio VirtualService's HTTP
	// routes, to the stable and canary Services or to DestinationRule subsets.
	// +optional
	Istio *IstioTrafficRouting `json:"istio,omitempty"`
	// GracePeriodSeconds waits after a traffic change before the next action, for proxies
	// to catch up. Default 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	GracePeriodSeconds int32 `json:"gracePeriodSeconds,omitempty"`
}

// IngressTrafficRouting names the Ingress in front of the Service.
type IngressTrafficRouting struct {
	// Name of the user's Ingress; a "<name>-canary" Ingress is generated beside it.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// ClassType is the controller implementation. Only nginx.
	// +optional
	// +kubebuilder:validation:Enum=nginx
	// +kubebuilder:default=nginx
	ClassType string `json:"classType,omitempty"`
}

// GatewayTrafficRouting names the HTTPRoute in front of the Service.
type GatewayTrafficRouting struct {
	// HTTPRouteName is the HTTPRoute whose backendRefs get weights.
	// +kubebuilder:validation:MinLength=1
	HTTPRouteName string `json:"httpRouteName"`
}

// IstioTrafficRouting names the VirtualService in front of the Service and, to route by
// subsets of one host instead of two Services, its DestinationRule; the fields are Argo
// Rollouts' istio fields.
type IstioTrafficRouting struct {
	// VirtualService is the VirtualService whose HTTP routes get weights.
	VirtualService IstioVirtualService `json:"virtualService"`
	// DestinationRule routes by its subsets: the VirtualService's destinations are the
	// Service's host with the stable subset, and the subsets' labels are pinned to the
	// revisions during a release. Unset: the destinations are the Service and its
	// "-canary" copy.
	// +optional
	DestinationRule *IstioDestinationRule `json:"destinationRule,omitempty"`
}

// IstioVirtualService names a VirtualService and the HTTP routes of it that move.
type IstioVirtualService struct {
	// Name of the VirtualService in the Rollout's namespace.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Routes are the names of its HTTP routes whose traffic moves. Unset: every HTTP route
	// whose destination is the Service.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Routes []string `json:"routes,omitempty"`
}

// IstioDestinationRule names a DestinationRule and its stable and canary subsets.
// +kubebuilder:validation:XValidation:rule="self.stableSubsetName != self.canarySubsetName",message="stableSubsetName and canarySubsetName must differ"
type IstioDestinationRule struct {
	// Name of the DestinationRule in the Rollout's namespace; its host is the Service.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// StableSubsetName is the subset the stable revision serves, e.g. stable.
	// +kubebuilder:validation:MinLength=1
	StableSubsetName string `json:"stableSubsetName"`
	// CanarySubsetName is the subset the new revision serves, e.g. canary.
	// +kubebuilder:validation:MinLength=1
	CanarySubsetName string `json:"canarySubsetName"`
}

// AbortOn aborts a release on alerts.
type AbortOn struct {
	// Alerts are matcher sets: a firing alert aborts the release when it matches every
	// matcher of at least one set.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Alerts []AlertMatcherSet `json:"alerts,omitempty"`
	// Alertmanager lets the controller poll Alertmanager's v2 alerts API on each step
	// tick, so a lost webhook cannot let a release through.
	// +optional
	Alertmanager *AlertmanagerPull `json:"alertmanager,omitempty"`
}

// AlertMatcherSet is a list of Prometheus label matchers that must all match.
type AlertMatcherSet struct {
	// Matchers in Prometheus syntax: name="value", name!="value", name=~"regex",
	// name!~"regex".
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	Matchers []string `json:"matchers"`
}

// AlertmanagerPull is pull mode for alert aborts.
type AlertmanagerPull struct {
	// Address is Alertmanager's base URL, e.g. http://alertmanager.monitoring:9093.
	// +kubebuilder:validation:MinLength=1
	Address string `json:"address"`
}

// ReleaseWindowClosePolicy says what happens when a window closes mid-release.
// +kubebuilder:validation:Enum=Hold;Abort
type ReleaseWindowClosePolicy string

const (
	// WindowHold stays at the current step until the next window.
	WindowHold ReleaseWindowClosePolicy = "Hold"
	// WindowAbort jumps back to step 1: all traffic on the stable version.
	WindowAbort ReleaseWindowClosePolicy = "Abort"
)

// ReleaseWindow is when unattended releases may proceed.
type ReleaseWindow struct {
	// Schedule is a cron expression for when the window opens, in TimeZone: 5 fields, 6
	// with a leading seconds field, or a descriptor such as @daily (not @every).
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`
	// Duration is how long the window stays open.
	Duration metav1.Duration `json:"duration"`
	// TimeZone is an IANA zone such as Europe/Paris. Default UTC.
	// +optional
	// +kubebuilder:default=UTC
	TimeZone string `json:"timeZone,omitempty"`
	// OnClose is Hold (default) or Abort.
	// +optional
	// +kubebuilder:default=Hold
	OnClose ReleaseWindowClosePolicy `json:"onClose,omitempty"`
}

// RolloutPhase is where the Rollout is.
// +kubebuilder:validation:Enum=Initial;Healthy;Progressing;Paused;Completed;Aborted;Cancelled;Disabled;Terminating
type RolloutPhase string

const (
	// RolloutPhaseInitial has not looked at the workload yet.
	RolloutPhaseInitial RolloutPhase = "Initial"
	// RolloutPhaseHealthy watches a workload with no release in progress.
	RolloutPhaseHealthy RolloutPhase = "Healthy"
	// RolloutPhaseProgressing is releasing.
	RolloutPhaseProgressing RolloutPhase = "Progressing"
	// RolloutPhasePaused waits for a human, a window or an inconclusive analysis.
	RolloutPhasePaused RolloutPhase = "Paused"
	// RolloutPhaseCompleted finished the last release.
	RolloutPhaseCompleted RolloutPhase = "Completed"
	// RolloutPhaseAborted went back to step 1: all traffic on the stable version.
	RolloutPhaseAborted RolloutPhase = "Aborted"
	// RolloutPhaseCancelled saw the workload reverted to the stable revision.
	RolloutPhaseCancelled RolloutPhase = "Cancelled"
	// RolloutPhaseDisabled does not manage the workload.
	RolloutPhaseDisabled RolloutPhase = "Disabled"
	// RolloutPhaseTerminating restores everything before the Rollout goes away.
	RolloutPhaseTerminating RolloutPhase = "Terminating"
)

// StepState is where the current step is.
// +kubebuilder:validation:Enum=StepUpgrade;StepTrafficRouting;StepMetricsAnalysis;StepPaused;StepReady;Completed
type StepState string

const (
	// StepUpgrade scales the new version to the step's replicas.
	StepUpgrade StepState = "StepUpgrade"
	// StepTrafficRouting applies the step's traffic.
	StepTrafficRouting StepState = "StepTrafficRouting"
	// StepMetricsAnalysis waits for the step's analysis.
	StepMetricsAnalysis StepState = "StepMetricsAnalysis"
	// StepPaused waits: a pause, a human, a window, or an inconclusive analysis.
	StepPaused StepState = "StepPaused"
	// StepReady may go to the next step (a human approves by setting this state).
	StepReady StepState = "StepReady"
	// StepCompleted is the state after the last step.
	StepCompleted StepState = "Completed"
)

// RolloutStatus says where the release is and why.
type RolloutStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase of the Rollout.
	// +optional
	Phase RolloutPhase `json:"phase,omitempty"`
	// Message says what is happening and why, e.g. the metric, value and condition that
	// aborted a release.
	// +optional
	Message string `json:"message,omitempty"`
	// CurrentStepIndex is the 1-based step in progress; 0 when no release is.
	// +optional
	CurrentStepIndex int32 `json:"currentStepIndex,omitempty"`
	// CurrentStepState is where the current step is.
	// +optional
	CurrentStepState StepState `json:"currentStepState,omitempty"`
	// NextStepIndex is set by a human to jump to a step (1 puts all traffic back on the
	// stable version); the controller clears it once applied.
	// +optional
	// +kubebuilder:validation:Minimum=0
	NextStepIndex int32 `json:"nextStepIndex,omitempty"`
	// Abort is set by a human to abort the release: all traffic back on the stable version,
	// phase Aborted. The controller clears it once applied.
	// +optional
	Abort bool `json:"abort,omitempty"`
	// PromoteFull is set by a human to skip the remaining steps, analyses and pauses and
	// complete the release. The controller clears it once applied.
	// +optional
	PromoteFull bool `json:"promoteFull,omitempty"`
	// ReleaseStartedAt is when the current release (or its last retry) began.
	// +optional
	ReleaseStartedAt *metav1.Time `json:"releaseStartedAt,omitempty"`
	// StableRevision is the revision serving traffic: a Deployment's pod-template-hash, a
	// StatefulSet's ControllerRevision name (its pods' controller-revision-hash).
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`
	// CanaryRevision is the revision being released, named as StableRevision is.
	// +optional
	CanaryRevision string `json:"canaryRevision,omitempty"`
	// BaselineRevision is the pod-template-hash of the current step's fresh baseline
	// pods, recorded before they are created and cleared once they are gone.
	// +optional
	BaselineRevision string `json:"baselineRevision,omitempty"`
	// ObservedWorkloadGeneration is the workload generation last acted upon.
	// +optional
	ObservedWorkloadGeneration int64 `json:"observedWorkloadGeneration,omitempty"`
	// StepStartedAt is when the current step state began, to the microsecond: pause
	// durations and traffic grace periods count from it, and a whole-second time would
	// end them up to a second early. In StepTrafficRouting it moves on while the step
	// waits for EndpointSlices, so the grace period counts from the traffic's move.
	// +optional
	StepStartedAt *metav1.MicroTime `json:"stepStartedAt,omitempty"`
	// LastUpdateTime is when status last changed.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`
	// AnalysisRuns names the runs of the current release.
	// +optional
	AnalysisRuns RolloutAnalysisRuns `json:"analysisRuns,omitempty"`
	// AbortReason is why the last release was aborted: metric, value and condition, or
	// the alert, window or human that decided.
	// +optional
	AbortReason string `json:"abortReason,omitempty"`
	// Held says the release window is closed: the release does not move until it opens.
	// +optional
	Held bool `json:"held,omitempty"`
	// Window is the release window as last computed, in the Rollout's time zone.
	// +optional
	Window *WindowStatus `json:"window,omitempty"`
	// AlertAbort is a firing alert that matched spec.abortOn, written by the alert
	// webhook or the pull check; the controller aborts the release and clears it.
	// +optional
	AlertAbort *AlertAbort `json:"alertAbort,omitempty"`
	// Steps records the steps of the current release, for its report.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Steps []StepRecord `json:"steps,omitempty"`
	// Report summarises the last release that ended.
	// +optional
	Report *ReleaseReport `json:"report,omitempty"`
	// Conditions hold Valid (the spec and its references are usable) and Progressing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WindowStatus is where the release window stands.
type WindowStatus struct {
	// Open says whether the window is open now.
	Open bool `json:"open"`
	// ClosesAt is when the open window closes.
	// +optional
	ClosesAt string `json:"closesAt,omitempty"`
	// NextOpen is when the window next opens.
	// +optional
	NextOpen string `json:"nextOpen,omitempty"`
}

// AlertAbort is a firing alert that aborts a release.
type AlertAbort struct {
	// AlertName is the alert's alertname label.
	AlertName string `json:"alertName"`
	// Labels are the alert's labels.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Source is "webhook" or "pull".
	Source string `json:"source"`
	// ReceivedAt is when promgate learnt of it.
	ReceivedAt metav1.Time `json:"receivedAt"`
}

// Decider is who or what decided a step or a release.
// +kubebuilder:validation:Enum=analysis;alert;window;human;controller
type Decider string

const (
	// DecidedByAnalysis is an AnalysisRun's verdict.
	DecidedByAnalysis Decider = "analysis"
	// DecidedByAlert is a firing Alertmanager alert.
	DecidedByAlert Decider = "alert"
	// DecidedByWindow is the release window (auto-promotion or closing).
	DecidedByWindow Decider = "window"
	// DecidedByHuman is a command in status, a template revert or a spec change.
	DecidedByHuman Decider = "human"
	// DecidedByController is a step with nothing to wait for, or a pause that ran out.
	DecidedByController Decider = "controller"
)

// StepRecord is one step of a release as it happened.
type StepRecord struct {
	// Index is the 1-based step.
	Index int32 `json:"index"`
	// StartedAt is when the step began.
	StartedAt metav1.Time `json:"startedAt"`
	// EndedAt is when it ended; unset while it runs.
	// +optional
	EndedAt *metav1.Time `json:"endedAt,omitempty"`
	// Verdict is how it ended: Successful, Inconclusive, Failed, Error, Aborted, Skipped.
	// +optional
	Verdict string `json:"verdict,omitempty"`
	// DecidedBy is who or what ended it.
	// +optional
	DecidedBy Decider `json:"decidedBy,omitempty"`
	// Measurements are the decisive ones: metric, value and phase.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	Measurements []string `json:"measurements,omitempty"`
}

// ReleaseReport summarises a release that ended.
type ReleaseReport struct {
	// Revision is the pod-template-hash that was released.
	Revision string `json:"revision"`
	// Outcome is Completed, Aborted or Cancelled.
	Outcome RolloutPhase `json:"outcome"`
	// StartedAt and EndedAt bound the release.
	StartedAt metav1.Time `json:"startedAt"`
	EndedAt   metav1.Time `json:"endedAt"`
	// DecidedBy is who or what ended the release.
	DecidedBy Decider `json:"decidedBy"`
	// Summary is the release in one line.
	Summary string `json:"summary"`
	// Steps are the steps walked, in order (at most 20; the earliest are dropped).
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Steps []StepRecord `json:"steps,omitempty"`
	// NotifiedAt is when spec.notify accepted the report.
	// +optional
	NotifiedAt *metav1.Time `json:"notifiedAt,omitempty"`
	// NotifyAttempts counts failed deliveries to spec.notify; the controller gives up at 5.
	// +optional
	NotifyAttempts int32 `json:"notifyAttempts,omitempty"`
	// LastNotifyAttemptAt is when the last failed delivery was tried; the next waits 5 s
	// times the attempts made.
	// +optional
	LastNotifyAttemptAt *metav1.Time `json:"lastNotifyAttemptAt,omitempty"`
}

// RolloutAnalysisRuns names the AnalysisRuns of the current release.
type RolloutAnalysisRuns struct {
	// Step is the current step's run.
	// +optional
	Step string `json:"step,omitempty"`
	// Background is the background analysis run.
	// +optional
	Background string `json:"background,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ro,categories=promgate
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="STEP",type=integer,JSONPath=`.status.currentStepIndex`
// +kubebuilder:printcolumn:name="STEP_STATE",type=string,JSONPath=`.status.currentStepState`
// +kubebuilder:printcolumn:name="MESSAGE",type=string,JSONPath=`.status.message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`

// Rollout is the release policy for an existing Deployment or StatefulSet.
type Rollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RolloutSpec   `json:"spec"`
	Status RolloutStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RolloutList is a list of Rollouts.
type RolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Rollout `json:"items"`
}
