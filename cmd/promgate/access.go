package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// access is a readiness check that the controller holds every permission its manifests
// grant it, asked with SelfSubjectAccessReviews: a missing RBAC rule fails /readyz and is
// named, verb and resource, in one log line, instead of surfacing minutes later as an
// informer that never syncs. The answer is cached: the probe itself sends nothing.
type access struct {
	// needs are the permissions to hold, one verb on one resource each.
	needs []authorizationv1.ResourceAttributes
	// review asks the API server whether the controller may do attrs.
	review func(ctx context.Context, attrs authorizationv1.ResourceAttributes) (bool, error)
	// whoami names the controller's user in the log line; it may fail.
	whoami func(ctx context.Context) (string, error)
	log    logr.Logger
	// retry is how soon permissions are asked again while some are missing or the
	// answer failed; recheck how often once all are held, so a rule removed later shows.
	retry, recheck time.Duration

	mu      sync.Mutex
	checked bool
	missing []string
	err     error
}

// newAccess checks the ClusterRole's rules cluster-wide and, with leader election, the
// leader election Role's in leaseNamespace.
func newAccess(cs kubernetes.Interface, log logr.Logger, clusterRules, leaseRules []rbacv1.PolicyRule, leaseNamespace string) *access {
	needs := expand(clusterRules, "")
	if leaseNamespace != "" {
		needs = append(needs, expand(leaseRules, leaseNamespace)...)
	}
	return &access{
		needs: needs,
		review: func(ctx context.Context, attrs authorizationv1.ResourceAttributes) (bool, error) {
			r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
			}, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			return r.Status.Allowed, nil
		},
		whoami: func(ctx context.Context) (string, error) {
			r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				return "", err
			}
			return r.Status.UserInfo.Username, nil
		},
		log:     log,
		retry:   30 * time.Second,
		recheck: 5 * time.Minute,
	}
}

// expand turns rules into one attribute set per verb and resource, in the rules' order.
func expand(rules []rbacv1.PolicyRule, namespace string) []authorizationv1.ResourceAttributes {
	var out []authorizationv1.ResourceAttributes
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				name, sub, _ := strings.Cut(res, "/")
				for _, v := range r.Verbs {
					out = append(out, authorizationv1.ResourceAttributes{Namespace: namespace, Verb: v, Group: g, Resource: name, Subresource: sub})
				}
			}
		}
	}
	return out
}

// describe says one permission the way kubectl auth can-i takes it: "list pods",
// "patch rollouts.promgate.io/status", "create leases.coordination.k8s.io in promgate-system".
func describe(a authorizationv1.ResourceAttributes) string {
	s := a.Verb + " " + a.Resource
	if a.Group != "" {
		s += "." + a.Group
	}
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	if a.Namespace != "" {
		s += " in " + a.Namespace
	}
	return s
}

// check asks every permission once and records what is missing; it logs only when the
// answer changes, so a pod that stays denied does not fill its log.
func (a *access) check(ctx context.Context) {
	var missing []string
	var errs []error
	for _, attrs := range a.needs {
		ok, err := a.review(ctx, attrs)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("asking whether the controller may %s: %w", describe(attrs), err))
		case !ok:
			missing = append(missing, describe(attrs))
		}
	}
	err := errors.Join(errs...)
	a.mu.Lock()
	changed := !a.checked || !slices.Equal(missing, a.missing) || (err == nil) != (a.err == nil)
	a.checked, a.missing, a.err = true, missing, err
	a.mu.Unlock()
	if !changed || ctx.Err() != nil {
		return
	}
	switch {
	case err != nil:
		a.log.Error(err, "cannot check the controller's RBAC permissions; /readyz fails until it can")
	case len(missing) > 0:
		user, werr := a.whoami(ctx)
		if werr != nil {
			user = "unknown (" + werr.Error() + ")"
		}
		a.log.Error(nil, "RBAC denies the controller permissions it needs; /readyz fails until they are granted",
			"user", user, "missing", strings.Join(missing, ", "))
	default:
		a.log.Info("the controller holds every RBAC permission it needs", "permissions", len(a.needs))
	}
}

// Start checks at once, then again every retry while anything is missing and every
// recheck once nothing is. It runs on every replica, leader or not.
func (a *access) Start(ctx context.Context) error {
	for {
		a.check(ctx)
		a.mu.Lock()
		wait := a.recheck
		if a.err != nil || len(a.missing) > 0 {
			wait = a.retry
		}
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// NeedLeaderElection is false: a standby must say it lacks a permission before it leads.
func (a *access) NeedLeaderElection() bool { return false }

// Ready is the /readyz check.
func (a *access) Ready(*http.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.checked:
		return errors.New("RBAC permissions not checked yet")
	case a.err != nil:
		return a.err
	case len(a.missing) > 0:
		return fmt.Errorf("RBAC denies: %s", strings.Join(a.missing, ", "))
	}
	return nil
}
