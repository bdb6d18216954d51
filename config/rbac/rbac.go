// Package rbac holds the controller's RBAC rules as the manifests declare them, so the
// controller checks at start exactly what its installation grants.
package rbac

import (
	_ "embed"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

var (
	//go:embed role.yaml
	controllerRole []byte
	//go:embed leader_election_role.yaml
	leaderElectionRole []byte
)

// ControllerRules are the rules of the ClusterRole generated from the code's kubebuilder
// markers (role.yaml): what the controller needs in every namespace.
func ControllerRules() ([]rbacv1.PolicyRule, error) {
	var r rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(controllerRole, &r); err != nil {
		return nil, fmt.Errorf("parsing config/rbac/role.yaml: %w", err)
	}
	return r.Rules, nil
}

// LeaderElectionRules are the rules of the Role granted in the controller's own namespace
// for its leader election (leader_election_role.yaml).
func LeaderElectionRules() ([]rbacv1.PolicyRule, error) {
	var r rbacv1.Role
	if err := yaml.UnmarshalStrict(leaderElectionRole, &r); err != nil {
		return nil, fmt.Errorf("parsing config/rbac/leader_election_role.yaml: %w", err)
	}
	return r.Rules, nil
}
