package install

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestContainerProcess(t *testing.T) {
	c := &corev1.Container{
		Name: "controller",
		Args: []string{"--leader-election-namespace=$(POD_NAMESPACE)", "--secret=$(POD_NAMESPACE)/$(NAME)", "--price=$$(POD_NAMESPACE)", "--x=$(UNSET)"},
		Env: []corev1.EnvVar{
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "NAME", Value: "hook-$(POD_NAMESPACE)"},
		},
	}
	args, env, err := ContainerProcess(c, "promgate-system", "promgate-0")
	require.NoError(t, err)
	assert.Equal(t, []string{"--leader-election-namespace=promgate-system", "--secret=promgate-system/hook-promgate-system", "--price=$(POD_NAMESPACE)", "--x=$(UNSET)"}, args)
	assert.Equal(t, []string{"POD_NAMESPACE=promgate-system", "NAME=hook-promgate-system"}, env)

	c.Env = append(c.Env, corev1.EnvVar{Name: "KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}})
	_, _, err = ContainerProcess(c, "ns", "pod")
	assert.ErrorContains(t, err, "env KEY comes from a source the bed cannot resolve")
	c.Command = []string{"/bin/sh"}
	_, _, err = ContainerProcess(c, "ns", "pod")
	assert.ErrorContains(t, err, "overrides the image's entrypoint")
}
