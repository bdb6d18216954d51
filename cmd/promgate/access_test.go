package main

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/promgate/promgate/config/rbac"
)

// TestAccessNamesWhatRBACDenies: a permission the installation does not grant fails
// /readyz, and one log line names its verb and resource, until it is granted.
func TestAccessNamesWhatRBACDenies(t *testing.T) {
	clusterRules, err := rbac.ControllerRules()
	require.NoError(t, err)
	leaseRules, err := rbac.LeaderElectionRules()
	require.NoError(t, err)
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})

	a := newAccess(nil, log, clusterRules, leaseRules, "promgate-system")
	denied := map[string]bool{"list pods": true, "create leases.coordination.k8s.io in promgate-system": true}
	a.review = func(_ context.Context, attrs authorizationv1.ResourceAttributes) (bool, error) {
		return !denied[describe(attrs)], nil
	}
	a.whoami = func(context.Context) (string, error) { return "system:serviceaccount:promgate-system:promgate", nil }

	require.ErrorContains(t, a.Ready(nil), "not checked yet", "not ready before the first answer")
	a.check(context.Background())
	err = a.Ready(nil)
	require.Error(t, err)
	assert.Equal(t, "RBAC denies: list pods, create leases.coordination.k8s.io in promgate-system", err.Error())
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], `"missing"="list pods, create leases.coordination.k8s.io in promgate-system"`)
	assert.Contains(t, lines[0], `"user"="system:serviceaccount:promgate-system:promgate"`)

	a.check(context.Background())
	assert.Len(t, lines, 1, "the same answer is not logged again")

	clear(denied)
	a.check(context.Background())
	assert.NoError(t, a.Ready(nil))
	require.Len(t, lines, 2)
	assert.Contains(t, lines[1], "holds every RBAC permission")
}

func TestAccessFailsWhenItCannotAsk(t *testing.T) {
	a := newAccess(nil, logr.Discard(), []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}, nil, "")
	a.review = func(context.Context, authorizationv1.ResourceAttributes) (bool, error) {
		return false, errors.New("connection refused")
	}
	a.check(context.Background())
	assert.ErrorContains(t, a.Ready(nil), "asking whether the controller may get secrets: connection refused")
}

func TestExpandAndDescribe(t *testing.T) {
	got := expand([]rbacv1.PolicyRule{{
		APIGroups: []string{"promgate.io"},
		Resources: []string{"rollouts", "rollouts/status"},
		Verbs:     []string{"get", "patch"},
	}}, "")
	var names []string
	for _, a := range got {
		names = append(names, describe(a))
	}
	assert.Equal(t, []string{"get rollouts.promgate.io", "patch rollouts.promgate.io", "get rollouts.promgate.io/status", "patch rollouts.promgate.io/status"}, names)
	assert.Equal(t, "status", got[2].Subresource)
}
