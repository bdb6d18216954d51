// Package v1alpha1 holds promgate's API: AnalysisTemplate, ClusterAnalysisTemplate,
// AnalysisRun and Rollout in the group promgate.io.
// +kubebuilder:object:generate=true
// +groupName=promgate.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is promgate.io/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "promgate.io", Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds; apimachinery's, so that importing the
	// API takes no controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &AnalysisTemplate{}, &AnalysisTemplateList{},
			&ClusterAnalysisTemplate{}, &ClusterAnalysisTemplateList{},
			&AnalysisRun{}, &AnalysisRunList{},
			&Rollout{}, &RolloutList{})
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
