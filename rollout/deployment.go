package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

const (
	// originalAnnotation keeps the Deployment fields promgate changes, as they were before
	// the Rollout took the Deployment over, so they are restored exactly.
	originalAnnotation = "promgate.io/original-deployment"
	// managedByAnnotation names the Rollout that manages the Deployment.
	managedByAnnotation = "promgate.io/rollout"

	// Kruise's constants: new pods never become available, so the Deployment controller
	// never scales the old version down, and never reports the rollout as stuck.
	holdMinReadySeconds         = math.MaxInt32 - 1
	holdProgressDeadlineSeconds = math.MaxInt32
)

// originalDeployment is what promgate changes on a Deployment.
type originalDeployment struct {
	Paused                  bool                      `json:"paused,omitempty"`
	Strategy                appsv1.DeploymentStrategy `json:"strategy"`
	MinReadySeconds         int32                     `json:"minReadySeconds,omitempty"`
	ProgressDeadlineSeconds *int32                    `json:"progressDeadlineSeconds,omitempty"`
}

func originalOf(d *appsv1.Deployment) originalDeployment {
	return originalDeployment{
		Paused:                  d.Spec.Paused,
		Strategy:                *d.Spec.Strategy.DeepCopy(),
		MinReadySeconds:         d.Spec.MinReadySeconds,
		ProgressDeadlineSeconds: d.Spec.ProgressDeadlineSeconds,
	}
}

// savedOriginal returns the fields saved when the Rollout took d over, if it did.
func savedOriginal(d *appsv1.Deployment) (originalDeployment, bool, error) {
	raw, ok := d.Annotations[originalAnnotation]
	if !ok {
		return originalDeployment{}, false, nil
	}
	var o originalDeployment
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return o, false, fmt.Errorf("decoding annotation %s of Deployment %s: %w", originalAnnotation, d.Name, err)
	}
	return o, true, nil
}

// revisions are the ReplicaSets of a Deployment that a release is about.
type revisions struct {
	// current runs the Deployment's pod template; nil until the Deployment controller
	// has created it.
	current *appsv1.ReplicaSet
	// byHash indexes every ReplicaSet the Deployment owns.
	byHash map[string]*appsv1.ReplicaSet
}

func hashOf(rs *appsv1.ReplicaSet) string {
	if rs == nil {
		return ""
	}
	return rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
}

// replicaSetOwnerIndex indexes the cached ReplicaSets by the Deployment controlling them:
// listing by the Deployment's label selector scans every ReplicaSet of the namespace, on
// every reconcile of every Rollout in it (a fifth of the controller's CPU at a thousand
// releases in one namespace).
const replicaSetOwnerIndex = "promgate.io/controlling-deployment"

// controllingDeployment is the index function of replicaSetOwnerIndex.
func controllingDeployment(o client.Object) []string {
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == "Deployment" {
		return []string{ref.Name}
	}
	return nil
}

// readRevisions finds the ReplicaSets owned by d. From the cache (indexed) they are found by
// replicaSetOwnerIndex, from the API server by d's selector. The current one is found by
// comparing pod templates without the hash label, as the Deployment controller itself does.
func readRevisions(ctx context.Context, c client.Reader, d *appsv1.Deployment, indexed bool) (revisions, error) {
	var match client.ListOption = client.MatchingFields{replicaSetOwnerIndex: d.Name}
	if !indexed {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return revisions{}, fmt.Errorf("reading the selector of Deployment %s: %w", d.Name, err)
		}
		match = client.MatchingLabelsSelector{Selector: sel}
	}
	var list appsv1.ReplicaSetList
	if err := c.List(ctx, &list, client.InNamespace(d.Namespace), match); err != nil {
		return revisions{}, fmt.Errorf("listing ReplicaSets: %w", err)
	}
	revs := revisions{byHash: map[string]*appsv1.ReplicaSet{}}
	var owned []*appsv1.ReplicaSet
	for i := range list.Items {
		rs := &list.Items[i]
		if metav1.IsControlledBy(rs, d) && rs.DeletionTimestamp == nil {
			owned = append(owned, rs)
		}
	}
	// The oldest first, so that of two equal templates the one the Deployment controller
	// would pick wins.
	sort.Slice(owned, func(i, j int) bool { return owned[i].CreationTimestamp.Before(&owned[j].CreationTimestamp) })
	for _, rs := range owned {
		revs.byHash[hashOf(rs)] = rs
		if revs.current == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			revs.current = rs
		}
	}
	return revs, nil
}

func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return equality.Semantic.DeepEqual(a, b)
}

// desiredReplicas resolves a step's replicas (count or percentage of the Deployment's).
func desiredReplicas(v *intstr.IntOrString, total int32) (int32, error) {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, int(total), true)
	if err != nil {
		return 0, err
	}
	return int32(min(n, int(total))), nil
}

// deployment is a Deployment as a workload: the Deployment controller runs the new pods
// beside the old ones under a hold (surge, nothing ever becomes available, so nothing old
// is scaled down), and the ReplicaSets are the revisions.
type deployment struct {
	// c writes (the reconcile's fenced client); reader reads what must not be stale.
	c      client.Client
	reader client.Reader
	// rollout is the name of the Rollout releasing it.
	rollout string
	d       *appsv1.Deployment
	revs    revisions
}

// loadDeployment reads the Deployment ref names and its ReplicaSets; nil when it does not
// exist.
func loadDeployment(ctx context.Context, c client.Client, reader client.Reader, ro *v1alpha1.Rollout) (*deployment, error) {
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.WorkloadRef.Name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Deployment %s: %w", ro.Spec.WorkloadRef.Name, err)
	}
	revs, err := readRevisions(ctx, c, &d, true)
	if err != nil {
		return nil, err
	}
	return &deployment{c: c, reader: reader, rollout: ro.Name, d: &d, revs: revs}, nil
}

func (w *deployment) describe() string          { return "Deployment " + w.d.Name }
func (w *deployment) labels() map[string]string { return w.d.Labels }
func (w *deployment) generation() int64         { return w.d.Generation }
func (w *deployment) current() string           { return hashOf(w.revs.current) }
func (w *deployment) rolledOut() bool           { return rolledOut(w.d) }
func (w *deployment) held() bool {
	return !w.d.Spec.Paused && w.d.Spec.MinReadySeconds == holdMinReadySeconds
}
func (w *deployment) managed() bool           { return w.owner() == w.rollout }
func (w *deployment) owner() string           { return w.d.Annotations[managedByAnnotation] }
func (w *deployment) scaleTargetKind() string { return "Deployment" }

func (w *deployment) revisionLabel() string { return appsv1.DefaultDeploymentUniqueLabelKey }

// observed is always true: the revision of a Deployment's template is found by comparing
// it with its ReplicaSets', not read from its status.
func (w *deployment) observed() bool { return true }

// pods are the pods of the Deployment's ReplicaSets, read from the API server.
func (w *deployment) pods(ctx context.Context) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(w.d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("reading the selector of Deployment %s: %w", w.d.Name, err)
	}
	var list corev1.PodList
	if err := w.reader.List(ctx, &list, client.InNamespace(w.d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the pods of Deployment %s: %w", w.d.Name, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if owner := metav1.GetControllerOf(&p); owner != nil && owner.Kind == "ReplicaSet" {
			if rs := w.revs.byHash[p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]]; rs != nil && rs.UID == owner.UID {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func (w *deployment) runs(rev string) bool {
	rs := w.revs.byHash[rev]
	return rs != nil && equalIgnoreHash(&rs.Spec.Template, &w.d.Spec.Template)
}

func (w *deployment) adopt(ctx context.Context) error {
	seen := w.owner()
	_, err := w.update(ctx, func(d *appsv1.Deployment) (bool, error) {
		if err := checkOwner(w.describe(), d.Annotations[managedByAnnotation], w.rollout, seen); err != nil {
			return false, err
		}
		return adopt(d, w.rollout)
	})
	return err
}

func (w *deployment) finish(ctx context.Context) error {
	_, err := w.update(ctx, func(d *appsv1.Deployment) (bool, error) { return release(d, true) })
	return err
}

func (w *deployment) restore(ctx context.Context) error {
	_, err := w.update(ctx, func(d *appsv1.Deployment) (bool, error) { return release(d, false) })
	return err
}

// step holds the Deployment at the split of the step (split.go) and writes the
// ReplicaSets back to it after a scaling event or a jump back.
func (w *deployment) step(ctx context.Context, stable string, replicas *intstr.IntOrString) (stepProgress, error) {
	splitFor := func(n int32, _ revisions) (split, error) { return stepSplit(n, replicas) }
	var sp split
	d, err := w.update(ctx, func(d *appsv1.Deployment) (bool, error) {
		var err error
		if sp, err = splitFor(ptr.Deref(d.Spec.Replicas, 1), w.revs); err != nil {
			return false, err
		}
		return hold(d, sp.surge, false), nil
	})
	if err != nil {
		return stepProgress{}, err
	}
	if err := w.correct(ctx, d, stable, splitFor); err != nil {
		return stepProgress{}, err
	}
	rs := w.revs.current
	if rs == nil || hashOf(rs) == stable {
		return stepProgress{want: sp.want, waiting: "waiting for the Deployment controller to create the new ReplicaSet"}, nil
	}
	old := w.revs.byHash[stable]
	p := stepProgress{want: sp.want, ready: rs.Status.ReadyReplicas}
	p.done = ptr.Deref(rs.Spec.Replicas, 0) == sp.canary && rs.Status.ObservedGeneration >= rs.Generation && p.ready >= sp.want &&
		(old == nil || ptr.Deref(old.Spec.Replicas, 0) == sp.stable)
	return p, nil
}

// freeze pauses the Deployment where it is, so the Deployment controller no longer rolls
// the new version out, and holds the aborted split (split.go): the stable version at the
// Deployment's size, the new one as it is or, with scaleDown, scaled away.
func (w *deployment) freeze(ctx context.Context, stable string, scaleDown bool) error {
	splitFor := func(n int32, revs revisions) (split, error) {
		var canary int32
		if revs.current != nil && hashOf(revs.current) != stable {
			canary = ptr.Deref(revs.current.Spec.Replicas, 0)
		}
		return abortedSplit(n, canary, scaleDown), nil
	}
	// Paused first, with the surge the release had: the ReplicaSets fill it already.
	d, err := w.update(ctx, func(d *appsv1.Deployment) (bool, error) {
		changed := !d.Spec.Paused
		d.Spec.Paused = true
		return changed, nil
	})
	if err != nil {
		return err
	}
	if err := w.correct(ctx, d, stable, splitFor); err != nil {
		return err
	}
	_, err = w.update(ctx, func(d *appsv1.Deployment) (bool, error) {
		sp, err := splitFor(ptr.Deref(d.Spec.Replicas, 1), w.revs)
		if err != nil {
			return false, err
		}
		return hold(d, sp.surge, true), nil
	})
	return err
}

// update applies mutate to the Deployment and writes it when mutate says it changed,
// until the write does not conflict. The first try mutates the Deployment this pass last
// saw (read from the cache, or as this pass wrote it); after a conflict, the API
// server's, so a cache that lags cannot make it give up. It returns the Deployment as
// written, or as mutate found it, and later updates of the pass start from that.
func (w *deployment) update(ctx context.Context, mutate func(*appsv1.Deployment) (bool, error)) (*appsv1.Deployment, error) {
	d := w.d.DeepCopy()
	key := client.ObjectKeyFromObject(d)
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			d = &appsv1.Deployment{}
			if err := w.reader.Get(ctx, key, d); err != nil {
				return err
			}
		}
		first = false
		changed, err := mutate(d)
		if err != nil || !changed {
			return err
		}
		return w.c.Update(ctx, d)
	})
	if err != nil {
		return nil, fmt.Errorf("updating Deployment %s: %w", key.Name, err)
	}
	w.d = d
	return d, nil
}

// correct writes the ReplicaSets the cache shows off the split of d back to it. It
// decides the writes from the API server's Deployment and ReplicaSets, never the cache's:
// the stable version's size is the Deployment's, and a cached Deployment one scaling
// event behind would size it wrong.
func (w *deployment) correct(ctx context.Context, d *appsv1.Deployment, stable string, splitFor func(int32, revisions) (split, error)) error {
	sp, err := splitFor(ptr.Deref(d.Spec.Replicas, 1), w.revs)
	if err != nil {
		return err
	}
	if len(sp.corrections(w.revs, stable)) == 0 {
		return nil
	}
	var fresh appsv1.Deployment
	if err := w.reader.Get(ctx, client.ObjectKeyFromObject(d), &fresh); err != nil {
		return fmt.Errorf("reading Deployment %s: %w", d.Name, err)
	}
	revs, err := readRevisions(ctx, w.reader, &fresh, false)
	if err != nil {
		return err
	}
	if sp, err = splitFor(ptr.Deref(fresh.Spec.Replicas, 1), revs); err != nil {
		return err
	}
	for _, fix := range sp.corrections(revs, stable) {
		// Optimistic: a ReplicaSet changed since this read is decided again.
		patch := client.MergeFromWithOptions(fix.rs.DeepCopy(), client.MergeFromWithOptimisticLock{})
		fix.rs.Spec.Replicas = ptr.To(fix.replicas)
		if err := w.c.Patch(ctx, fix.rs, patch); err != nil {
			return fmt.Errorf("scaling ReplicaSet %s to %d: %w", fix.rs.Name, fix.replicas, err)
		}
	}
	w.revs = revs
	return nil
}

// adopt saves the Deployment's fields and pauses it, so a new template waits for the
// Rollout instead of rolling out at once.
func adopt(d *appsv1.Deployment, rollout string) (bool, error) {
	if _, ok := d.Annotations[originalAnnotation]; ok {
		changed := !d.Spec.Paused || d.Annotations[managedByAnnotation] != rollout
		d.Spec.Paused = true
		d.Annotations[managedByAnnotation] = rollout
		return changed, nil
	}
	raw, err := json.Marshal(originalOf(d))
	if err != nil {
		return false, err
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[originalAnnotation] = string(raw)
	d.Annotations[managedByAnnotation] = rollout
	d.Spec.Paused = true
	return true, nil
}

// hold makes the Deployment controller add surge new pods beside the old ones and
// never scale the old ones down; paused, it adds none either (an aborted release).
func hold(d *appsv1.Deployment, surge int32, paused bool) bool {
	want := appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge:       new(intstr.FromInt32(max(surge, 1))),
			MaxUnavailable: new(intstr.FromInt32(0)),
		},
	}
	changed := d.Spec.Paused != paused || d.Spec.MinReadySeconds != holdMinReadySeconds ||
		d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != holdProgressDeadlineSeconds ||
		!equality.Semantic.DeepEqual(d.Spec.Strategy, want)
	d.Spec.Paused = paused
	d.Spec.Strategy = want
	d.Spec.MinReadySeconds = holdMinReadySeconds
	d.Spec.ProgressDeadlineSeconds = new(int32(holdProgressDeadlineSeconds))
	return changed
}

// release gives the Deployment back its own strategy, unpaused to roll out its template
// while the Rollout keeps managing it; with keepManaging false it also gets its own
// paused field back and forgets the Rollout.
func release(d *appsv1.Deployment, keepManaging bool) (bool, error) {
	o, ok, err := savedOriginal(d)
	if err != nil || !ok {
		return false, err
	}
	before := d.Spec.DeepCopy()
	d.Spec.Strategy = o.Strategy
	d.Spec.MinReadySeconds = o.MinReadySeconds
	d.Spec.ProgressDeadlineSeconds = o.ProgressDeadlineSeconds
	d.Spec.Paused = false
	if !keepManaging {
		d.Spec.Paused = o.Paused
		delete(d.Annotations, originalAnnotation)
		delete(d.Annotations, managedByAnnotation)
		return true, nil
	}
	return !equality.Semantic.DeepEqual(before, &d.Spec), nil
}

// rolledOut says whether the Deployment controller has finished: every pod runs the
// current template and is available.
func rolledOut(d *appsv1.Deployment) bool {
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}
