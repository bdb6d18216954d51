package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// notFoundError is a Rollout that is not in the namespace asked for; elsewhere lists
// namespaces that have one of that name, for the hint.
type notFoundError struct {
	namespace, name string
	elsewhere       []string
}

func (e *notFoundError) Error() string {
	msg := fmt.Sprintf("Rollout %q not found in namespace %q", e.name, e.namespace)
	if len(e.elsewhere) > 0 {
		msg += fmt.Sprintf(" (namespace %s has one: -n %s)", strings.Join(e.elsewhere, ", "), e.elsewhere[0])
	}
	return msg
}

// getRollout reads a Rollout; a missing one is a *notFoundError.
func getRollout(ctx context.Context, c client.Reader, ns, name string) (*v1alpha1.Rollout, error) {
	var ro v1alpha1.Rollout
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ro)
	if apierrors.IsNotFound(err) {
		return nil, &notFoundError{namespace: ns, name: name, elsewhere: namespacesWith(ctx, c, name)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading Rollout %s/%s: %w", ns, name, err)
	}
	return &ro, nil
}

// namespacesWith lists the namespaces holding a Rollout called name, when the user may
// list Rollouts across namespaces; it is only a hint, so any error gives none.
func namespacesWith(ctx context.Context, c client.Reader, name string) []string {
	var list v1alpha1.RolloutList
	if err := c.List(ctx, &list); err != nil {
		return nil
	}
	var out []string
	for _, ro := range list.Items {
		if ro.Name == name {
			out = append(out, ro.Namespace)
		}
	}
	slices.Sort(out)
	return out
}

// change is how a command changes a Rollout: decide checks the state and mutates ro (its
// status or spec) and says what was done, or returns why nothing should be.
type change struct {
	status bool
	decide func(ro *v1alpha1.Rollout) (string, error)
}

// apply reads the Rollout, decides and writes the change as a merge patch carrying the
// read's resourceVersion: a Rollout that changed since (the controller writes status all
// through a release) makes the write conflict, and the decision is taken again from the
// newer Rollout rather than applied to a state it was not taken on.
func apply(ctx context.Context, c client.Client, ns, name string, ch change) (string, error) {
	var done string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ro, err := getRollout(ctx, c, ns, name)
		if err != nil {
			return err
		}
		patch := client.MergeFromWithOptions(ro.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if done, err = ch.decide(ro); err != nil {
			return err
		}
		if ch.status {
			err = c.Status().Patch(ctx, ro, patch)
		} else {
			err = c.Patch(ctx, ro, patch)
		}
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("patching Rollout %s/%s: %w", ns, name, err)
		}
		return err
	})
	if apierrors.IsConflict(err) {
		return "", fmt.Errorf("the Rollout %s/%s kept changing while the command was decided; nothing was changed, run it again", ns, name)
	}
	return done, err
}

// refusal is a command that does not fit the Rollout's state; nothing is changed.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// isRefusal says whether err is a command or a read refused for the Rollout's state.
func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}
