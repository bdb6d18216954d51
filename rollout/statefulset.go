package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

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

// holdPartition is above every ordinal a StatefulSet can have: no pod moves to a new
// template until a step lowers it.
const holdPartition = math.MaxInt32

// originalStatefulSet is what promgate changes on a StatefulSet.
type originalStatefulSet struct {
	UpdateStrategy appsv1.StatefulSetUpdateStrategy `json:"updateStrategy"`
}

// statefulSet is a StatefulSet as a workload: its partition holds every pod with an
// ordinal below it on the current revision, so a step of want new pods sets it to
// replicas - want and the StatefulSet controller moves the highest ordinals, one at a
// time. Revisions are ControllerRevision names, which its pods carry in the label
// controller-revision-hash; status.currentRevision is the stable one during a release,
// status.updateRevision the template's.
type statefulSet struct {
	c       client.Client
	reader  client.Reader
	rollout string
	s       *appsv1.StatefulSet
}

// loadStatefulSet reads the StatefulSet ref names; nil when it does not exist.
func loadStatefulSet(ctx context.Context, c client.Client, reader client.Reader, ro *v1alpha1.Rollout) (*statefulSet, error) {
	var s appsv1.StatefulSet
	if err := c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.WorkloadRef.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading StatefulSet %s: %w", ro.Spec.WorkloadRef.Name, err)
	}
	return &statefulSet{c: c, reader: reader, rollout: ro.Name, s: &s}, nil
}

func (w *statefulSet) describe() string          { return "StatefulSet " + w.s.Name }
func (w *statefulSet) labels() map[string]string { return w.s.Labels }
func (w *statefulSet) generation() int64         { return w.s.Generation }
func (w *statefulSet) managed() bool             { return w.owner() == w.rollout }
func (w *statefulSet) owner() string             { return w.s.Annotations[managedByAnnotation] }
func (w *statefulSet) scaleTargetKind() string   { return "StatefulSet" }
func (w *statefulSet) replicas() int32           { return ptr.Deref(w.s.Spec.Replicas, 1) }

// observed says the status describes the spec: until then updateRevision may be the
// previous template's.
func (w *statefulSet) observed() bool { return w.s.Status.ObservedGeneration >= w.s.Generation }

func (w *statefulSet) current() string {
	if !w.observed() {
		return ""
	}
	return w.s.Status.UpdateRevision
}

func (w *statefulSet) runs(rev string) bool { return rev != "" && w.current() == rev }

func (w *statefulSet) rolledOut() bool {
	st, n := w.s.Status, w.replicas()
	return w.observed() && st.CurrentRevision == st.UpdateRevision &&
		st.Replicas == n && st.UpdatedReplicas == n && st.ReadyReplicas == n && st.AvailableReplicas == n
}

// held says a release moved the partition below the hold: its steps decide the pods.
func (w *statefulSet) held() bool {
	p := partitionOf(w.s)
	return w.managed() && p != nil && *p < holdPartition
}

func partitionOf(s *appsv1.StatefulSet) *int32 {
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		return ru.Partition
	}
	return nil
}

// checkUpdateStrategy refuses a StatefulSet whose pods only change when deleted: no
// partition can hold or move them.
func checkUpdateStrategy(s *appsv1.StatefulSet) error {
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return fmt.Errorf("StatefulSet %s updates its pods only when they are deleted (updateStrategy OnDelete); a release moves them by partition and needs RollingUpdate", s.Name)
	}
	return nil
}

func (w *statefulSet) adopt(ctx context.Context) error {
	seen := w.owner()
	return w.update(ctx, func(s *appsv1.StatefulSet) (bool, error) {
		if err := checkOwner(w.describe(), s.Annotations[managedByAnnotation], w.rollout, seen); err != nil {
			return false, err
		}
		changed := s.Annotations[managedByAnnotation] != w.rollout
		if _, ok := s.Annotations[originalAnnotation]; !ok {
			raw, err := json.Marshal(originalStatefulSet{UpdateStrategy: *s.Spec.UpdateStrategy.DeepCopy()})
			if err != nil {
				return false, err
			}
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[originalAnnotation] = string(raw)
			changed = true
		}
		s.Annotations[managedByAnnotation] = w.rollout
		return setPartition(s, holdPartition) || changed, nil
	})
}

// setPartition sets the rolling update's partition, keeping its other fields.
func setPartition(s *appsv1.StatefulSet, partition int32) bool {
	if p := partitionOf(s); p != nil && *p == partition && s.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		return false
	}
	s.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
	if s.Spec.UpdateStrategy.RollingUpdate == nil {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
	}
	s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(partition)
	return true
}

// stepPartition is the partition of a step of replicas (a count or a percentage of n,
// rounded up): the highest ordinals run the new revision.
func stepPartition(n int32, replicas *intstr.IntOrString) (partition, want int32, err error) {
	want, err = desiredReplicas(replicas, n)
	if err != nil {
		return 0, 0, err
	}
	return n - want, want, nil
}

// step sets the partition of the step for the StatefulSet's size now, whatever scaled it
// since, and brings back to the stable revision, one at a time, any pod below it on the
// new one (a jump back, or pods a scale-up created before the partition followed).
func (w *statefulSet) step(ctx context.Context, stable string, replicas *intstr.IntOrString) (stepProgress, error) {
	var partition, want int32
	err := w.update(ctx, func(s *appsv1.StatefulSet) (bool, error) {
		var err error
		if partition, want, err = stepPartition(ptr.Deref(s.Spec.Replicas, 1), replicas); err != nil {
			return false, err
		}
		return setPartition(s, partition), nil
	})
	if err != nil {
		return stepProgress{}, err
	}
	return w.settlePods(ctx, stable, partition, want)
}

// settlePods counts the new revision's Ready pods and restores to stable, one at a
// time, a pod below partition that runs another revision.
func (w *statefulSet) settlePods(ctx context.Context, stable string, partition, want int32) (stepProgress, error) {
	p := stepProgress{want: want}
	update := w.current()
	if update == "" || update == stable {
		p.waiting = "waiting for the StatefulSet controller to record the new revision"
		return p, nil
	}
	pods, err := w.pods(ctx)
	if err != nil {
		return p, err
	}
	var wrong []corev1.Pod
	// A pod deleted and not yet back keeps the next one waiting as well.
	busy := int32(len(pods)) < w.replicas()
	for _, pod := range pods {
		rev := pod.Labels[appsv1.ControllerRevisionHashLabelKey]
		switch {
		case pod.DeletionTimestamp != nil:
			busy = true
		case ordinalOf(&pod) < partition && rev != stable:
			wrong = append(wrong, pod)
		case !podReady(&pod):
			busy = true
		case rev == update:
			p.ready++
		}
	}
	if len(wrong) > 0 {
		// The StatefulSet controller does not take a pod back below a raised partition;
		// deleted, it comes back on the current revision. One at a time, and only with
		// every other pod Ready, as a rolling update would; the pods being brought back
		// are not waited for, since a failing new version may never be Ready.
		if !busy {
			slices.SortFunc(wrong, func(a, b corev1.Pod) int { return int(ordinalOf(&b) - ordinalOf(&a)) })
			victim := wrong[0]
			uid := victim.UID
			if err := w.c.Delete(ctx, &victim, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
				return p, fmt.Errorf("deleting pod %s to bring it back to revision %s: %w", victim.Name, stable, err)
			}
		}
		p.waiting = fmt.Sprintf("bringing %d pods below ordinal %d back to the stable revision, one at a time", len(wrong), partition)
		return p, nil
	}
	p.done = w.observed() && p.ready >= want
	return p, nil
}

func (w *statefulSet) revisionLabel() string { return appsv1.ControllerRevisionHashLabelKey }

// pods are the StatefulSet's pods, read from the API server: what a step decides from.
func (w *statefulSet) pods(ctx context.Context) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(w.s.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("reading the selector of StatefulSet %s: %w", w.s.Name, err)
	}
	var list corev1.PodList
	if err := w.reader.List(ctx, &list, client.InNamespace(w.s.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the pods of StatefulSet %s: %w", w.s.Name, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if metav1.IsControlledBy(&p, w.s) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ordinalOf is a StatefulSet pod's ordinal: its label, else the end of its name.
func ordinalOf(p *corev1.Pod) int32 {
	s, ok := p.Labels[appsv1.PodIndexLabel]
	if !ok {
		s = p.Name[strings.LastIndex(p.Name, "-")+1:]
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// freeze holds an aborted release: the partition stays where it is and the new pods with
// it, or, with scaleDown, goes back above every ordinal and the new pods go back to the
// stable revision, one at a time.
func (w *statefulSet) freeze(ctx context.Context, stable string, scaleDown bool) error {
	if !scaleDown {
		return nil
	}
	if err := w.update(ctx, func(s *appsv1.StatefulSet) (bool, error) { return setPartition(s, holdPartition), nil }); err != nil {
		return err
	}
	_, err := w.settlePods(ctx, stable, holdPartition, 0)
	return err
}

func (w *statefulSet) finish(ctx context.Context) error {
	return w.update(ctx, func(s *appsv1.StatefulSet) (bool, error) { return w.original(s, true) })
}

func (w *statefulSet) restore(ctx context.Context) error {
	return w.update(ctx, func(s *appsv1.StatefulSet) (bool, error) { return w.original(s, false) })
}

// original gives s its own update strategy back, to roll its template out on its own;
// with keepManaging false it also forgets the Rollout.
func (w *statefulSet) original(s *appsv1.StatefulSet, keepManaging bool) (bool, error) {
	raw, ok := s.Annotations[originalAnnotation]
	if !ok {
		return false, nil
	}
	var o originalStatefulSet
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return false, fmt.Errorf("decoding annotation %s of StatefulSet %s: %w", originalAnnotation, s.Name, err)
	}
	changed := !equality.Semantic.DeepEqual(s.Spec.UpdateStrategy, o.UpdateStrategy)
	s.Spec.UpdateStrategy = o.UpdateStrategy
	if !keepManaging {
		delete(s.Annotations, originalAnnotation)
		delete(s.Annotations, managedByAnnotation)
		return true, nil
	}
	return changed, nil
}

// update applies mutate to the StatefulSet and writes it when mutate says it changed, as
// deployment.update does for a Deployment.
func (w *statefulSet) update(ctx context.Context, mutate func(*appsv1.StatefulSet) (bool, error)) error {
	s := w.s.DeepCopy()
	key := client.ObjectKeyFromObject(s)
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			s = &appsv1.StatefulSet{}
			if err := w.reader.Get(ctx, key, s); err != nil {
				return err
			}
		}
		first = false
		changed, err := mutate(s)
		if err != nil || !changed {
			return err
		}
		return w.c.Update(ctx, s)
	})
	if err != nil {
		return fmt.Errorf("updating StatefulSet %s: %w", key.Name, err)
	}
	w.s = s
	return nil
}
