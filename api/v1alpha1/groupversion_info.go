// Package v1alpha1 holds promgate's API: AnalysisTemplate, ClusterAnalysisTemplate,
// AnalysisRun and Rollout in the group promgate.io.
// +kubebuilder:object:generate=true
// +groupName=promgate.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is promgate.io/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "promgate.io", Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
