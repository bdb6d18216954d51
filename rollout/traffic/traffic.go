package traffic

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/promgate/promgate/api/v1alpha1"
)

const (
	// LabelRollout names the Rollout on every object this package generates.
	LabelRollout = "promgate.io/rollout"
	// AnnotationOriginalSelector holds the stable Service's own selector as JSON while it is pinned.
	AnnotationOriginalSelector = "promgate.io/original-selector"
	// AnnotationOriginalRules holds the HTTPRoute's own spec.rules as JSON while weights are applied.
	AnnotationOriginalRules = "promgate.io/original-rules"

	// podTemplateHash is the label the Deployment controller puts on each ReplicaSet's pods.
	podTemplateHash = appsv1.DefaultDeploymentUniqueLabelKey
	// CanarySuffix names the generated copies of the Service and Ingress: "<name>-canary".
	CanarySuffix = "-canary"
	// BaselineSuffix names the generated Service of a step's fresh baseline pods:
	// "<service>-baseline".
	BaselineSuffix = "-baseline"
)

// Target is one spec.strategy.<kind>.trafficRoutings entry of a Rollout in a release.
type Target struct {
	// Rollout owns the generated objects (controller ownerReference) and gives the namespace.
	Rollout *v1alpha1.Rollout
	// Routing is the trafficRoutings entry.
	Routing v1alpha1.TrafficRouting
	// Field is the entry's path for error messages, e.g. spec.strategy.canary.trafficRoutings[0].
	Field *field.Path
	// StableRevision and CanaryRevision are values of RevisionLabel.
	StableRevision, CanaryRevision string
	// BaselineRevision, when set, is the RevisionLabel of fresh baseline pods that a
	// BaselineRouter sends the canary's share through "<service>-baseline".
	BaselineRevision string
	// RevisionLabel is the pod label naming the revisions; pod-template-hash when empty.
	RevisionLabel string
	// Endpoints says when the data plane can follow: no Service gets traffic before its
	// EndpointSlices hold ready pods of its revision alone.
	Endpoints Endpoints
}

// Router moves one traffic routing's requests between the stable and the canary revision.
type Router interface {
	// Validate checks the referenced objects exist and can carry the requested steps; a *field.Error on bad input (NotFound for a missing Service/Ingress/HTTPRoute; Invalid for an HTTPRoute without a backendRef to the Service, more than one header match for nginx, etc.). It changes nothing.
	Validate(ctx context.Context, steps []v1alpha1.RolloutStep, stepsPath *field.Path) error
	// Route sends weight percent (0-100) of requests, and every request matching matches, to the canary revision. Idempotent: a no-op when already applied (no API write). Before it sends the canary anything it waits for the canary Service's EndpointSlices: a *NotReadyError until they hold ready canary pods alone, with nothing routed yet. Sending nothing to the canary never waits.
	Route(ctx context.Context, weight int32, matches []v1alpha1.HTTPRouteMatch) error
	// Finish sends all traffic to winner (the stable revision on abort/cancel/disable/delete, the canary revision on completion), restores the user's Ingress/HTTPRoute exactly, deletes generated objects except that the stable Service stays pinned to winner. It returns a *NotReadyError until the stable Service's EndpointSlices hold the winner's ready pods alone, and on completion it restores the routes only then. Idempotent: call it again until it returns nil.
	Finish(ctx context.Context, winner string) error
	// PinStable pins the stable Service to the stable revision, before a release's new
	// pods exist, so they get no traffic the steps have not given them. Idempotent.
	PinStable(ctx context.Context) error
	// Unpin restores the stable Service's original selector exactly and deletes the generated canary Service; called once the loser's pods are gone. Idempotent.
	Unpin(ctx context.Context) error
}

// BaselineRouter is a Router that can also carry a fresh baseline (Target.BaselineRevision):
// Route gives it the canary's weight, taken from the stable Service's.
type BaselineRouter interface {
	Router
	// DropBaseline gives the baseline's share back to the stable Service, the canary's
	// left as it is, then deletes the generated baseline Service. Idempotent.
	DropBaseline(ctx context.Context) error
}

// New returns the Router for t's kind of routing: gateway, ingress, istio, or the Service
// alone.
func New(c client.Client, t Target) Router {
	base := serviceRouter{c: c, t: t}
	switch {
	case t.Routing.Gateway != nil:
		return &gatewayRouter{serviceRouter: base}
	case t.Routing.Ingress != nil:
		return &ingressRouter{serviceRouter: base}
	case t.Routing.Istio != nil:
		return &istioRouter{serviceRouter: base}
	default:
		return &base
	}
}

func (t Target) revisionLabel() string {
	if t.RevisionLabel == "" {
		return podTemplateHash
	}
	return t.RevisionLabel
}

// RevisionLabel is the pod label naming the revision of a workload kind's pods: a
// StatefulSet's controller-revision-hash, a Deployment's pod-template-hash.
func RevisionLabel(kind string) string {
	if kind == "StatefulSet" {
		return appsv1.ControllerRevisionHashLabelKey
	}
	return podTemplateHash
}

// ForRollout returns the routers of every trafficRoutings entry of ro's strategy, between
// the revisions its status names. Abort paths (the controller's and the alert webhook's)
// and the step machine all route through it.
func ForRollout(c client.Client, ep Endpoints, ro *v1alpha1.Rollout) []Router {
	st, path := ro.Spec.Strategy.Active()
	if st == nil {
		return nil
	}
	out := make([]Router, 0, len(st.TrafficRoutings))
	for i, tr := range st.TrafficRoutings {
		out = append(out, New(c, Target{
			Rollout: ro, Routing: tr, Field: path.Child("trafficRoutings").Index(i),
			StableRevision: ro.Status.StableRevision, CanaryRevision: ro.Status.CanaryRevision, Endpoints: ep,
			BaselineRevision: ro.Status.BaselineRevision,
			RevisionLabel:    RevisionLabel(ro.Spec.WorkloadRef.Kind),
		}))
	}
	return out
}

// conflictBackoff is longer than retry.DefaultRetry because a Service or HTTPRoute may be
// written by its owner's tooling at the same time; a conflict must not reach the caller.
var conflictBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.1}

// retryConflicts runs fn again, after re-reading inside fn, when another writer won the
// race: a Conflict on update or delete, or AlreadyExists on a create after a stale Get.
func retryConflicts(fn func() error) error {
	return retry.OnError(conflictBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, fn)
}

// check rejects a Target that no method can work with, so that nothing below dereferences nil.
func (t Target) check() error {
	if t.Rollout == nil {
		return errors.New("traffic routing target has no Rollout")
	}
	if t.Routing.Service == "" {
		return field.Required(t.Field.Child("service"), "the Service whose traffic moves")
	}
	n := 0
	for _, set := range []bool{t.Routing.Ingress != nil, t.Routing.Gateway != nil, t.Routing.Istio != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return field.Invalid(t.Field, t.Routing, "ingress, gateway and istio are mutually exclusive in one traffic routing")
	}
	return nil
}

func (t Target) checkRevisions() error {
	if t.StableRevision == "" || t.CanaryRevision == "" {
		return fmt.Errorf("routing traffic of Rollout %s/%s needs both revisions (stable %q, canary %q)",
			t.Rollout.Namespace, t.Rollout.Name, t.StableRevision, t.CanaryRevision)
	}
	return nil
}

// checkWinner refuses a winner that is neither revision: pinning the stable Service to an
// unknown hash would leave it without pods.
func (t Target) checkWinner(winner string) error {
	if winner == "" || (winner != t.StableRevision && winner != t.CanaryRevision) {
		return fmt.Errorf("finishing traffic of Rollout %s/%s: winner %q is neither the stable (%q) nor the canary (%q) revision",
			t.Rollout.Namespace, t.Rollout.Name, winner, t.StableRevision, t.CanaryRevision)
	}
	return nil
}

func checkWeight(weight int32) error {
	if weight < 0 || weight > 100 {
		return fmt.Errorf("traffic weight %d is outside 0-100", weight)
	}
	return nil
}

// stepCheck inspects one step; path is the step's, e.g. spec.strategy.canary.steps[2],
// and weight is nil when the step leaves traffic unchanged.
type stepCheck func(path *field.Path, weight *int32, matches []v1alpha1.HTTPRouteMatch) *field.Error

// checkSteps parses every step's traffic and hands each step to check; it returns every
// problem of every step.
func checkSteps(steps []v1alpha1.RolloutStep, stepsPath *field.Path, check stepCheck) error {
	var errs []error
	for i, s := range steps {
		path := stepsPath.Index(i)
		var weight *int32
		if s.Traffic != nil {
			w, err := v1alpha1.ParsePercent(*s.Traffic)
			if err != nil {
				errs = append(errs, field.Invalid(path.Child("traffic"), *s.Traffic, err.Error()))
				continue
			}
			weight = &w
		}
		if err := check(path, weight, s.Matches); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkStepMatches checks every step's header matches, and that object (a route the
// router rewrites, named for the message) can carry them: carry builds its routes with
// them.
func checkStepMatches(steps []v1alpha1.RolloutStep, stepsPath *field.Path, object string, carry func([]v1alpha1.HTTPRouteMatch) error) error {
	return checkSteps(steps, stepsPath, func(path *field.Path, _ *int32, matches []v1alpha1.HTTPRouteMatch) *field.Error {
		if len(matches) == 0 {
			return nil
		}
		if err := checkHeaders(matches); err != nil {
			return field.Invalid(path.Child("matches"), matches, err.Error())
		}
		if err := carry(matches); err != nil {
			return field.Invalid(path.Child("matches"), matches, fmt.Sprintf("%s cannot carry these matches: %v", object, err))
		}
		return nil
	})
}

// headerToken is RFC 7230's token, the only header names proxies accept.
var headerToken = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+\-.^_` + "`" + `|~]+$`)

// checkHeaders rejects header matches no proxy can express; it is shared by the ingress
// and gateway routers, whose proxies both match headers by token name and Exact or
// RegularExpression value.
func checkHeaders(matches []v1alpha1.HTTPRouteMatch) error {
	for i, m := range matches {
		if len(m.Headers) == 0 {
			return fmt.Errorf("match %d has no headers", i)
		}
		seen := map[string]bool{}
		for _, h := range m.Headers {
			if !headerToken.MatchString(h.Name) {
				return fmt.Errorf("match %d: %q is not a valid header name", i, h.Name)
			}
			switch h.Type {
			case "", "Exact", "RegularExpression":
			default:
				return fmt.Errorf("match %d: header %q has type %q, not Exact or RegularExpression", i, h.Name, h.Type)
			}
			if seen[strings.ToLower(h.Name)] {
				return fmt.Errorf("match %d matches header %q twice", i, h.Name)
			}
			seen[strings.ToLower(h.Name)] = true
		}
	}
	return nil
}

func isRegex(h v1alpha1.HeaderMatch) bool { return h.Type == "RegularExpression" }

// checkRolloutName catches a Rollout name too long for the label every generated object carries.
func (t Target) checkRolloutName() error {
	if errs := validation.IsValidLabelValue(t.Rollout.Name); len(errs) > 0 {
		return field.Invalid(field.NewPath("metadata", "name"), t.Rollout.Name, fmt.Sprintf("generated objects are labelled %s=%s: %s",
			LabelRollout, t.Rollout.Name, strings.Join(errs, "; ")))
	}
	return nil
}

// owns reports whether obj was generated for this Rollout; a same-named object of the
// user's is never changed or deleted.
func (t Target) owns(obj metav1.Object) bool {
	return metav1.IsControlledBy(obj, t.Rollout)
}

// generate writes this Rollout's object obj (its namespace and name set) with mutate
// applied, creating it or updating what mutate changes. An object of that name the
// Rollout did not generate is refused untouched: it is the user's.
func (r *serviceRouter) generate(ctx context.Context, obj client.Object, kind string, mutate func() error) error {
	name := obj.GetName()
	_, err := controllerutil.CreateOrUpdate(ctx, r.c, obj, func() error {
		if obj.GetResourceVersion() != "" && !r.t.owns(obj) {
			return fmt.Errorf("the %s %s/%s exists and was not generated by Rollout %s", kind, obj.GetNamespace(), name, r.t.Rollout.Name)
		}
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelRollout] = r.t.Rollout.Name
		obj.SetLabels(labels)
		if err := controllerutil.SetControllerReference(r.t.Rollout, obj, r.c.Scheme()); err != nil {
			return fmt.Errorf("owning %s %s by Rollout %s: %w", kind, name, r.t.Rollout.Name, err)
		}
		return mutate()
	})
	if err != nil {
		return fmt.Errorf("writing %s %s/%s: %w", kind, obj.GetNamespace(), name, err)
	}
	return nil
}

// deleteGenerated deletes this Rollout's object name of obj's kind, if it exists.
func (r *serviceRouter) deleteGenerated(ctx context.Context, obj client.Object, kind, name string) error {
	return retryConflicts(func() error {
		if err := r.c.Get(ctx, r.key(name), obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("getting %s %s/%s: %w", kind, r.t.Rollout.Namespace, name, err)
		}
		if !r.t.owns(obj) {
			return nil
		}
		uid, rv := obj.GetUID(), obj.GetResourceVersion()
		err := r.c.Delete(ctx, obj, client.Preconditions{UID: &uid, ResourceVersion: &rv})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s/%s: %w", kind, r.t.Rollout.Namespace, name, err)
		}
		return nil
	})
}

func (r *serviceRouter) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: r.t.Rollout.Namespace, Name: name}
}

// setAnnotation sets one annotation, creating the map when needed.
func setAnnotation(obj metav1.Object, key, value string) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	obj.SetAnnotations(a)
}

// removeAnnotation deletes one annotation and drops an emptied map, so that a restored
// object serializes exactly as the user's did.
func removeAnnotation(obj metav1.Object, key string) {
	a := obj.GetAnnotations()
	delete(a, key)
	if len(a) == 0 {
		a = nil
	}
	obj.SetAnnotations(a)
}
