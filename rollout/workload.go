package rollout

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is what a Rollout releases, as the step machine sees it: a Deployment
// (deployment.go) or a StatefulSet (statefulset.go). It holds the view of the workload one
// reconcile read and writes through the reconcile's fenced client. Revisions are the
// names status records and pods carry: a Deployment's pod-template-hash, a StatefulSet's
// ControllerRevision names.
type workload interface {
	// describe names it for messages, e.g. "Deployment web".
	describe() string
	// labels are its own labels (LabelReleaseID names its releases).
	labels() map[string]string
	generation() int64
	// observed says its status describes its spec: until then which revision its
	// template is may not be known.
	observed() bool
	// current is the revision of the workload's template; "" until it exists.
	current() string
	// runs says whether rev is the revision of the workload's template.
	runs(rev string) bool
	// rolledOut says every pod runs the template and is available.
	rolledOut() bool
	// held says a release holds it: new pods come only by the steps.
	held() bool
	// managed says this Rollout took it over; a second Rollout on it never did.
	managed() bool
	// owner is the Rollout that took it over, "" when none has.
	owner() string
	// scaleTargetKind is the kind an HPA scaling it names.
	scaleTargetKind() string
	// adopt saves what a release changes and keeps a new template from rolling out on its
	// own. Idempotent.
	adopt(ctx context.Context) error
	// step holds it at a step: replicas (a count or a percentage of its size) of the
	// template's revision beside all of stable's, whatever scaled it since; and reports
	// the new pods' progress.
	step(ctx context.Context, stable string, replicas *intstr.IntOrString) (stepProgress, error)
	// freeze holds an aborted release: the stable revision at full size, the new one as
	// it is or, with scaleDown, gone.
	freeze(ctx context.Context, stable string, scaleDown bool) error
	// finish gives it its own strategy back to roll its template out on its own, still
	// managed. Idempotent.
	finish(ctx context.Context) error
	// restore gives it back exactly as it was before the Rollout took it, unmanaged.
	restore(ctx context.Context) error
	// pods are its pods, read from the API server; revisionLabel is the label naming
	// each one's revision.
	pods(ctx context.Context) ([]corev1.Pod, error)
	revisionLabel() string
}

// takenError says the API server's copy of the workload names another Rollout than the
// view the reconcile decided from did: that Rollout took it over since. Nothing is
// written; the next reconcile, from a view that shows the owner, refuses with a field error.
type takenError struct {
	workload, by string
}

func (e *takenError) Error() string {
	return fmt.Sprintf("%s was taken over by Rollout %q since this reconcile read it", e.workload, e.by)
}

// checkOwner refuses to adopt a workload whose fresh copy names owner, unless it is this
// Rollout or the owner the reconcile's view showed (a Rollout gone without releasing it).
func checkOwner(workload, owner, rollout, seen string) error {
	if owner == "" || owner == rollout || owner == seen {
		return nil
	}
	return &takenError{workload: workload, by: owner}
}

// stepProgress is how far a step's new pods are.
type stepProgress struct {
	// want is the new pods the step asks for; ready how many of them are Ready.
	want, ready int32
	done        bool
	// waiting says what the step waits for before there are new pods to count.
	waiting string
	// pods names the pods counted, "new" when empty ("baseline" for a step's baseline).
	pods string
}

func (p stepProgress) String() string {
	if p.waiting != "" {
		return p.waiting
	}
	pods := p.pods
	if pods == "" {
		pods = "new"
	}
	return fmt.Sprintf("%d/%d %s pods ready", p.ready, p.want, pods)
}
