package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// deploymentRevision is the annotation the Deployment controller numbers ReplicaSets with.
const deploymentRevision = "deployment.kubernetes.io/revision"

// workload is what a Rollout releases, as the plugin reads and writes it. Where a kind
// keeps the template of each revision differs (a Deployment's ReplicaSets, a
// StatefulSet's ControllerRevisions), so loadWorkload picks the kind's implementation.
type workload interface {
	// describe names it, e.g. "Deployment web".
	describe() string
	object() client.Object
	generation() int64
	// template is the live pod template, which undo and set image change.
	template() *corev1.PodTemplateSpec
	// revisionTemplate is the pod template of revision rev; an error when none is kept.
	revisionTemplate(rev string) (*corev1.PodTemplateSpec, error)
	// revisions are the kept revisions with their pods, newest first.
	revisions() []revision
	// replicas are the pods it asks for and those ready.
	replicas() (desired, ready int32)
}

// revision is one revision of a workload: the object that runs it, its pods and images.
type revision struct {
	kind, name string
	// hash names the revision as Rollout status does; number is its place in the
	// workload's history.
	hash, number string
	created      metav1.Time
	// desired and ready count its pods.
	desired, ready int32
	images         []string
	pods           []corev1.Pod
}

// loadWorkload reads the workload a Rollout releases.
func loadWorkload(ctx context.Context, c client.Reader, ro *v1alpha1.Rollout) (workload, error) {
	ref := ro.Spec.WorkloadRef
	switch ref.Kind {
	case "Deployment":
		return loadDeployment(ctx, c, ro.Namespace, ref.Name)
	}
	return nil, refuse("Rollout %s releases a %s (%s): this plugin reads and changes Deployments only", ro.Name, ref.Kind, ref.Name)
}

type deployment struct {
	d    *appsv1.Deployment
	rss  []appsv1.ReplicaSet
	pods []corev1.Pod
}

func loadDeployment(ctx context.Context, c client.Reader, ns, name string) (*deployment, error) {
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, refuse("Deployment %s/%s, which the Rollout releases, does not exist", ns, name)
		}
		return nil, fmt.Errorf("reading Deployment %s/%s: %w", ns, name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("reading the selector of Deployment %s/%s: %w", ns, name, err)
	}
	var rss appsv1.ReplicaSetList
	if err := c.List(ctx, &rss, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the ReplicaSets of Deployment %s/%s: %w", ns, name, err)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the pods of Deployment %s/%s: %w", ns, name, err)
	}
	w := &deployment{d: &d, pods: pods.Items}
	for _, rs := range rss.Items {
		if metav1.IsControlledBy(&rs, &d) {
			w.rss = append(w.rss, rs)
		}
	}
	return w, nil
}

func (w *deployment) describe() string                  { return "Deployment " + w.d.Name }
func (w *deployment) object() client.Object             { return w.d }
func (w *deployment) generation() int64                 { return w.d.Generation }
func (w *deployment) template() *corev1.PodTemplateSpec { return &w.d.Spec.Template }

func (w *deployment) replicas() (int32, int32) {
	desired := int32(1)
	if w.d.Spec.Replicas != nil {
		desired = *w.d.Spec.Replicas
	}
	return desired, w.d.Status.ReadyReplicas
}

func (w *deployment) revisionTemplate(rev string) (*corev1.PodTemplateSpec, error) {
	for _, rs := range w.rss {
		if rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == rev {
			t := rs.Spec.Template.DeepCopy()
			// The Deployment controller adds the hash to the ReplicaSet's copy; the
			// Deployment's own template never has it.
			delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
			return t, nil
		}
	}
	return nil, refuse("%s keeps no ReplicaSet of revision %s", w.describe(), rev)
}

func (w *deployment) revisions() []revision {
	out := make([]revision, 0, len(w.rss))
	for _, rs := range w.rss {
		r := revision{
			kind: "ReplicaSet", name: rs.Name, hash: rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey],
			number: rs.Annotations[deploymentRevision], created: rs.CreationTimestamp,
			ready: rs.Status.ReadyReplicas, images: images(&rs.Spec.Template),
		}
		if rs.Spec.Replicas != nil {
			r.desired = *rs.Spec.Replicas
		}
		for _, p := range w.pods {
			if metav1.IsControlledBy(&p, &rs) {
				r.pods = append(r.pods, p)
			}
		}
		sort.Slice(r.pods, func(i, j int) bool { return r.pods[i].Name < r.pods[j].Name })
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, errA := strconv.Atoi(out[i].number)
		b, errB := strconv.Atoi(out[j].number)
		if errA == nil && errB == nil && a != b {
			return a > b
		}
		return out[j].created.Before(&out[i].created)
	})
	return out
}

// runsRevision says whether the live template is revision rev's.
func runsRevision(w workload, rev string) bool {
	t, err := w.revisionTemplate(rev)
	return err == nil && equality.Semantic.DeepEqual(t, w.template())
}

// images are the images of a template's containers, init containers first.
func images(t *corev1.PodTemplateSpec) []string {
	var out []string
	for _, c := range slices.Concat(t.Spec.InitContainers, t.Spec.Containers) {
		out = append(out, c.Image)
	}
	return out
}

// changeWorkload reads the Rollout and its workload, decides and writes the workload
// with the resourceVersion it was read at; a conflict decides again from fresh reads.
func changeWorkload(ctx context.Context, c client.Client, ns, name string, decide func(*v1alpha1.Rollout, workload) (string, error)) (string, error) {
	var done string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ro, err := getRollout(ctx, c, ns, name)
		if err != nil {
			return err
		}
		w, err := loadWorkload(ctx, c, ro)
		if err != nil {
			return err
		}
		if done, err = decide(ro, w); err != nil || done == "" {
			return err
		}
		if err := c.Update(ctx, w.object()); err != nil {
			if apierrors.IsConflict(err) {
				return err
			}
			return fmt.Errorf("updating %s: %w", w.describe(), err)
		}
		return nil
	})
	if apierrors.IsConflict(err) {
		return "", fmt.Errorf("the workload of Rollout %s/%s kept changing while the command was decided; nothing was changed, run it again", ns, name)
	}
	return done, err
}

// undo puts the stable revision's pod template back on the workload; the controller
// sees the revert and cancels the release.
func undo(ro *v1alpha1.Rollout, w workload) (string, error) {
	stable := ro.Status.StableRevision
	if !releasing(ro) {
		return "", noRelease(ro, "undo")
	}
	if runsRevision(w, stable) {
		return "", refuse("%s already runs the stable revision %s: the release is being cancelled", w.describe(), stable)
	}
	t, err := w.revisionTemplate(stable)
	if err != nil {
		return "", err
	}
	*w.template() = *t
	return fmt.Sprintf("Rollout %s: %s is back on the stable revision %s (%s); the controller cancels the release",
		ro.Name, w.describe(), stable, strings.Join(images(t), ", ")), nil
}

// setImages sets container images from CONTAINER=IMAGE pairs, all checked before any is
// set; a new template starts a release from step 1.
func setImages(pairs []string) func(*v1alpha1.Rollout, workload) (string, error) {
	return func(ro *v1alpha1.Rollout, w workload) (string, error) {
		t := w.template()
		var changed []string
		for _, pair := range pairs {
			name, image, ok := strings.Cut(pair, "=")
			if !ok || name == "" || image == "" {
				return "", refuse("%q is not CONTAINER=IMAGE", pair)
			}
			if _, err := reference.ParseNormalizedNamed(image); err != nil {
				return "", refuse("invalid image reference %q: %v", image, err)
			}
			c := container(t, name)
			if c == nil {
				return "", refuse("%s has no container %q (its containers: %s)", w.describe(), name, strings.Join(containerNames(t), ", "))
			}
			if c.Image != image {
				changed = append(changed, fmt.Sprintf("%s=%s (was %s)", name, image, c.Image))
				c.Image = image
			}
		}
		if len(changed) == 0 {
			return "", nil
		}
		return fmt.Sprintf("Rollout %s: %s now runs %s; the controller releases it from step 1", ro.Name, w.describe(), strings.Join(changed, ", ")), nil
	}
}

func container(t *corev1.PodTemplateSpec, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{t.Spec.InitContainers, t.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

func containerNames(t *corev1.PodTemplateSpec) []string {
	var out []string
	for _, c := range slices.Concat(t.Spec.InitContainers, t.Spec.Containers) {
		out = append(out, c.Name)
	}
	return out
}

func (a *app) undoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "undo NAME",
		Short: "Put the stable revision's pod template back on the workload, which cancels the release",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runWorkloadChange(cmd.Context(), args[0], undo, "")
		},
	}
	a.rolloutArg(cmd, 1)
	return cmd
}

func (a *app) setCommand() *cobra.Command {
	set := &cobra.Command{Use: "set", Short: "Change the released workload"}
	image := &cobra.Command{
		Use:   "image NAME CONTAINER=IMAGE...",
		Short: "Set container images of the workload's pod template: a new revision, released from step 1",
		Args:  cobra.MinimumNArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return a.completeRollouts(cmd.Context(), prefix), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runWorkloadChange(cmd.Context(), args[0], setImages(args[1:]), "the images are already those; nothing was changed")
		},
	}
	set.AddCommand(image)
	return set
}

// runWorkloadChange applies decide and prints what it did, or unchanged when it found
// nothing to do.
func (a *app) runWorkloadChange(ctx context.Context, name string, decide func(*v1alpha1.Rollout, workload) (string, error), unchanged string) error {
	c, ns, err := a.connectIn()
	if err != nil {
		return err
	}
	done, err := changeWorkload(ctx, c, ns, name, decide)
	if err != nil {
		return err
	}
	if done == "" {
		done = unchanged
	}
	a.printf("%s\n", done)
	return nil
}
