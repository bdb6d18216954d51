package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/rollout/alerts"
	"github.com/promgate/promgate/rollout/traffic"
)

// +kubebuilder:rbac:groups=promgate.io,resources=rollouts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=promgate.io,resources=rollouts/status;rollouts/finalizers,verbs=get;update;patch
// +kubebuilder:rbac:groups=promgate.io,resources=analysisruns,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;patch;delete
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;update;patch

const (
	finalizer = "promgate.io/restore"
	// workloadIndex indexes Rollouts by the workload they release, "Kind/name".
	workloadIndex = "spec.workloadRef"
	// serviceIndex indexes Rollouts by the Services their traffic moves through, the
	// stable one and its generated -canary and -baseline copies.
	serviceIndex = "spec.strategy.trafficRoutings.service"

	// staleRetry is how soon a reconcile that found its cached Rollout stale looks again,
	// should the newer Rollout's watch event not come first.
	staleRetry = 200 * time.Millisecond
	// soon is how soon a pass comes back that left work for the next one: a run named in
	// status before it is created, a write lost to a conflict.
	soon = 10 * time.Millisecond

	// ConditionValid says whether the spec and what it refers to are usable.
	ConditionValid = "Valid"
	// ConditionProgressing says whether a release is moving.
	ConditionProgressing = "Progressing"
)

// Reconciler walks Rollouts through their steps.
type Reconciler struct {
	Client client.Client
	// APIReader reads what the cache may not have seen yet.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Metrics export release reports; nil exports nothing.
	Metrics *Metrics
	// ShardLabels are the label keys of a sharded controller's selector: a Rollout's runs
	// carry its values of them, so the shard that owns the Rollout owns its runs.
	ShardLabels []string
	// Now is the clock; tests inject one.
	Now func() time.Time
}

// SetupWithManager registers the controller and its watches.
func (r *Reconciler) SetupWithManager(mgr manager.Manager, workers int) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Rollout{}, workloadIndex, func(o client.Object) []string {
		ref := o.(*v1alpha1.Rollout).Spec.WorkloadRef
		return []string{workloadKey(ref.Kind, ref.Name)}
	}); err != nil {
		return fmt.Errorf("indexing Rollouts by workload: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &appsv1.ReplicaSet{}, replicaSetOwnerIndex, controllingDeployment); err != nil {
		return fmt.Errorf("indexing ReplicaSets by Deployment: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.Rollout{}, serviceIndex, func(o client.Object) []string {
		st, _ := o.(*v1alpha1.Rollout).Spec.Strategy.Active()
		if st == nil {
			return nil
		}
		var names []string
		for _, tr := range st.TrafficRoutings {
			names = append(names, tr.Service, tr.Service+traffic.CanarySuffix, tr.Service+traffic.BaselineSuffix)
		}
		return names
	}); err != nil {
		return fmt.Errorf("indexing Rollouts by Service: %w", err)
	}
	byWorkload := func(ctx context.Context, ns, kind, name string) []reconcile.Request {
		var list v1alpha1.RolloutList
		if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{workloadIndex: workloadKey(kind, name)}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i, ro := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ro)}
		}
		return reqs
	}
	return builder.ControllerManagedBy(mgr).
		For(&v1alpha1.Rollout{}).
		Owns(&v1alpha1.AnalysisRun{}, builder.WithPredicates(runPhaseChanged)).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return byWorkload(ctx, o.GetNamespace(), "Deployment", o.GetName())
		})).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return byWorkload(ctx, o.GetNamespace(), "StatefulSet", o.GetName())
		})).
		Watches(&appsv1.ReplicaSet{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			owner := metav1.GetControllerOf(o)
			switch {
			case owner == nil:
				return nil
			case owner.Kind == "Deployment":
				return byWorkload(ctx, o.GetNamespace(), "Deployment", owner.Name)
			case owner.Kind == "Rollout" && owner.APIVersion == v1alpha1.GroupVersion.String():
				// A step's fresh baseline (baseline.go).
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: owner.Name}}}
			}
			return nil
		}), builder.WithPredicates(replicaSetChanged)).
		// A step waiting for a Service's EndpointSlices is woken when they change. Only
		// their metadata is cached: the check itself reads them from the API server.
		WatchesMetadata(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			svc := o.GetLabels()[discoveryv1.LabelServiceName]
			if svc == "" {
				return nil
			}
			var list v1alpha1.RolloutList
			if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{serviceIndex: svc}); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, len(list.Items))
			for i, ro := range list.Items {
				reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ro)}
			}
			return reqs
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// Reconcile moves one Rollout as far as the cluster allows and records where it is.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var ro v1alpha1.Rollout
	if err := r.Client.Get(ctx, req.NamespacedName, &ro); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if ro.DeletionTimestamp != nil {
		return r.finalize(ctx, &ro)
	}
	if !controllerutil.ContainsFinalizer(&ro, finalizer) {
		controllerutil.AddFinalizer(&ro, finalizer)
		if err := r.Client.Update(ctx, &ro); err != nil {
			return requeueOnConflict(err, "adding the finalizer")
		}
	}
	before := ro.Status.DeepCopy()
	s := r.newState(&ro)
	res, err := s.reconcile(ctx)
	res = sooner(res, reconcile.Result{RequeueAfter: s.wake})
	var (
		fe    *field.Error
		stale *staleError
		taken *takenError
		nr    *traffic.NotReadyError
	)
	switch {
	case err == nil:
	case errors.As(err, &fe):
		// A spec change comes back by the watch; an object the spec refers to and that
		// was created later (not watched) by this look.
		reason, after := "InvalidSpec", 30*time.Second
		if fe.Type == field.ErrorTypeNotFound {
			reason, after = "InvalidReference", 10*time.Second
		}
		s.invalid(reason, err.Error())
		res, err = reconcile.Result{RequeueAfter: after}, nil
	case errors.As(err, &stale):
		logf.FromContext(ctx).V(1).Info("the cached Rollout is stale; deciding again from the newer one", "reason", err.Error())
		return reconcile.Result{RequeueAfter: staleRetry}, nil
	case errors.As(err, &taken):
		logf.FromContext(ctx).Info("another Rollout took the workload over; deciding again from a view that shows it", "reason", err.Error())
		return reconcile.Result{RequeueAfter: staleRetry}, nil
	case errors.As(err, &nr):
		// A wait the step machine did not expect (a jump, a restore): nothing of this
		// pass is recorded, and the slices' watch or this look brings it back.
		logf.FromContext(ctx).V(1).Info("waiting for EndpointSlices", "reason", err.Error())
		return reconcile.Result{RequeueAfter: waitPoll}, nil
	default:
		// A pass cut short records nothing of what it decided, so a command or an abort
		// it had taken from status is taken again by the next pass.
		return requeueOnConflict(err, "reconciling")
	}
	if werr := r.writeStatus(ctx, &ro, before); werr != nil {
		return requeueOnConflict(werr, "writing status")
	}
	r.Metrics.observe(&ro)
	s.flush()
	// Only a report already in status is sent, so a write lost to a conflict never sends
	// one that was computed from a stale Rollout.
	nres, nerr := s.notify(ctx)
	s.flush()
	return sooner(res, nres), nerr
}

func (r *Reconciler) writeStatus(ctx context.Context, ro *v1alpha1.Rollout, before *v1alpha1.RolloutStatus) error {
	ro.Status.ObservedGeneration = ro.Generation
	if equality.Semantic.DeepEqual(before, &ro.Status) {
		return nil
	}
	ro.Status.LastUpdateTime = &metav1.Time{Time: r.Now()}
	return r.Client.Status().Update(ctx, ro)
}

// workloadKey is a workload's key in workloadIndex.
func workloadKey(kind, name string) string { return kind + "/" + name }

// sooner merges two results into the one that comes back first.
func sooner(a, b reconcile.Result) reconcile.Result {
	if b.RequeueAfter > 0 && (a.RequeueAfter == 0 || b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

func requeueOnConflict(err error, what string) (reconcile.Result, error) {
	if apierrors.IsConflict(err) {
		// Someone (often a human command) changed the Rollout: start over from it.
		return reconcile.Result{RequeueAfter: soon}, nil
	}
	return reconcile.Result{}, fmt.Errorf("%s: %w", what, err)
}

// finalize undoes a release before the Rollout goes away.
func (r *Reconciler) finalize(ctx context.Context, ro *v1alpha1.Rollout) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(ro, finalizer) {
		return reconcile.Result{}, nil
	}
	s := r.newState(ro)
	if err := s.letGo(ctx); err != nil {
		if nr, ok := errors.AsType[*traffic.NotReadyError](err); ok {
			logf.FromContext(ctx).V(1).Info("restoring before deletion waits for EndpointSlices", "reason", nr.Error())
			return reconcile.Result{RequeueAfter: waitPoll}, nil
		}
		return reconcile.Result{}, err
	}
	controllerutil.RemoveFinalizer(ro, finalizer)
	if err := r.Client.Update(ctx, ro); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return requeueOnConflict(err, "removing the finalizer")
	}
	s.flush()
	return reconcile.Result{}, nil
}

// newState starts one reconcile of ro at the clock's time, rounded up to the microsecond
// that status keeps of it, so that no duration counted from it ends early.
func (r *Reconciler) newState(ro *v1alpha1.Rollout) *state {
	now := r.Now()
	if t := now.Truncate(time.Microsecond); t.Before(now) {
		now = t.Add(time.Microsecond)
	}
	return &state{r: r, ro: ro, now: now, c: newFencedClient(r.Client, r.APIReader, ro), ep: traffic.SliceEndpoints{Reader: r.APIReader}}
}

// state is one reconcile of one Rollout.
type state struct {
	r   *Reconciler
	ro  *v1alpha1.Rollout
	now time.Time
	// c writes everything but the Rollout itself, only once the Rollout is known fresh.
	c *fencedClient
	// ep tells when a Service's EndpointSlices can carry traffic.
	ep traffic.Endpoints
	// w is the workload, set by load.
	w workload
	// readyBy is who moved the step to StepReady in this reconcile; unset, a human did.
	readyBy v1alpha1.Decider
	events  []pendingEvent
	// reported says a release ended in this reconcile, to count once it is in status.
	reported bool
	// window and matchers are the parsed release window and alert matchers.
	window   *Window
	matchers alerts.MatcherSets
	// wake is the soonest time a gate wants to look again.
	wake time.Duration
}

// wakeIn asks for a reconcile within d at the latest.
func (s *state) wakeIn(d time.Duration) {
	if d > 0 && (s.wake == 0 || d < s.wake) {
		s.wake = d
	}
}

// event queues an event about a transition; flush sends the queue once the transition
// is in status, so a reconcile whose write conflicts (and is redone) says nothing twice.
func (s *state) event(kind, reason, format string, args ...any) {
	s.events = append(s.events, pendingEvent{kind, reason, fmt.Sprintf(format, args...)})
}

func (s *state) flush() {
	for _, e := range s.events {
		s.r.Recorder.Eventf(s.ro, nil, e.kind, e.reason, "Reconcile", "%s", e.note)
	}
	s.events = nil
	if s.reported {
		s.r.Metrics.released(s.ro, s.ro.Status.Report)
		s.reported = false
	}
}

type pendingEvent struct{ kind, reason, note string }

func (s *state) setCondition(t string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&s.ro.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.ro.Generation,
	})
}

// invalid reports a spec or reference problem; nothing in the cluster is changed.
func (s *state) invalid(reason, msg string) {
	if c := apimeta.FindStatusCondition(s.ro.Status.Conditions, ConditionValid); c == nil || c.Message != msg {
		s.event(corev1.EventTypeWarning, reason, "%s", msg)
	}
	s.setCondition(ConditionValid, metav1.ConditionFalse, reason, msg)
	s.ro.Status.Message = msg
	if s.ro.Status.Phase == "" {
		s.ro.Status.Phase = v1alpha1.RolloutPhaseInitial
	}
}
