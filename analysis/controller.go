package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers"
)

// +kubebuilder:rbac:groups=promgate.io,resources=analysisruns,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=promgate.io,resources=analysisruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// RunReconciler measures AnalysisRuns. Everything it needs is in the run's spec and
// status: measurements are scheduled from the last measurement's tick with RequeueAfter,
// so a restart resumes on time and never double-counts (a status write from a stale read
// conflicts and is retried).
type RunReconciler struct {
	Client client.Client
	// Secrets reads Secrets straight from the API server. Caching every Secret of the
	// cluster (Helm keeps releases in them) would cost memory and a list/watch grant; a
	// run reads its Secrets only when its plan is prepared, at most once a minute.
	Secrets client.Reader
	// Status writes status without reading the object back: decoding every response was
	// a third of the controller's CPU at 100 measurements/s, and the watch brings the new
	// object anyway.
	Status   rest.Interface
	Engine   *Engine
	Recorder events.EventRecorder
	Metrics  *Metrics

	plans planCache
}

// planTTL bounds how long a prepared plan is reused: secrets read into it (tokens, args)
// are picked up again at least this often after a rotation.
const planTTL = time.Minute

// planCache keeps each run's prepared plan between its reconciles: preparing again at
// every measurement built provider keys and HTTP config for nothing. It is only a cache:
// a restarted controller prepares again from the spec.
type planCache struct {
	mu    sync.Mutex
	plans map[types.UID]cachedPlan
}

type cachedPlan struct {
	plan       *Plan
	generation int64
	prepared   time.Time
}

func (c *planCache) get(run *v1alpha1.AnalysisRun, now time.Time) *Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.plans[run.UID]
	if !ok || p.generation != run.Generation || now.Sub(p.prepared) > planTTL {
		return nil
	}
	return p.plan
}

func (c *planCache) put(run *v1alpha1.AnalysisRun, plan *Plan, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plans == nil {
		c.plans = map[types.UID]cachedPlan{}
	}
	// Runs deleted mid-measurement never come back to be forgotten; expired entries go
	// whenever the cache has grown.
	if len(c.plans) >= 1024 && len(c.plans)%1024 == 0 {
		for uid, p := range c.plans {
			if now.Sub(p.prepared) > planTTL {
				delete(c.plans, uid)
			}
		}
	}
	c.plans[run.UID] = cachedPlan{plan: plan, generation: run.Generation, prepared: now}
}

func (c *planCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.plans, uid)
}

// SetupWithManager registers the controller; workers bounds runs measured in parallel.
func (r *RunReconciler) SetupWithManager(mgr manager.Manager, workers int) error {
	return builder.ControllerManagedBy(mgr).
		For(&v1alpha1.AnalysisRun{}).
		Named("analysisrun").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// Reconcile takes the measurements due now and persists them.
func (r *RunReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var run v1alpha1.AnalysisRun
	if err := r.Client.Get(ctx, req.NamespacedName, &run); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	now := time.Now()
	if run.Status.Phase.Completed() {
		r.plans.forget(run.UID)
		if err := r.release(ctx, &run); err != nil {
			return reconcile.Result{}, err
		}
		return r.collectGarbage(ctx, &run, now)
	}
	before := run.Status.DeepCopy()

	plan := r.plans.get(&run, now)
	if plan == nil {
		var err error
		if plan, err = r.Engine.Prepare(ctx, &run.Spec, r.secretFunc(run.Namespace), runOf(&run)); err != nil {
			return r.invalid(ctx, &run, before, now, err)
		}
		r.plans.put(&run, plan, now)
	}
	setCondition(&run.Status.Conditions, run.Generation, v1alpha1.ConditionValid, metav1.ConditionTrue, "Prepared", "args resolved, queries valid, conditions compiled")
	run.Status.ObservedGeneration = run.Generation

	taken, next := plan.Step(ctx, &run.Status, now, run.Spec.Terminate)
	if retry, err := r.writeStatus(ctx, &run, before); retry || err != nil {
		return reconcile.Result{RequeueAfter: retryAfter}, err
	}
	template := templateName(&run)
	for _, t := range taken {
		r.Metrics.measured(template, t)
		logger.V(1).Info("measured", "metric", t.Metric, "phase", t.Measurement.Phase, "value", t.Measurement.Value, "message", t.Measurement.Message)
	}
	r.announce(&run, before)
	if next.IsZero() {
		if err := r.release(ctx, &run); err != nil {
			return reconcile.Result{}, err
		}
		return r.collectGarbage(ctx, &run, now)
	}
	// A slow measurement can leave the next tick already due; RequeueAfter 0 would mean
	// "never", so the wait is at least a millisecond.
	return reconcile.Result{RequeueAfter: max(time.Until(next), time.Millisecond)}, nil
}

// retryAfter is how soon a run is looked at again after a write conflict.
const retryAfter = 50 * time.Millisecond

// invalid ends a run whose spec does not prepare: nothing is measured, and the Valid
// condition names the field at fault for every problem, each on a new line.
func (r *RunReconciler) invalid(ctx context.Context, run *v1alpha1.AnalysisRun, before *v1alpha1.AnalysisRunStatus, now time.Time, err error) (reconcile.Result, error) {
	run.Status.Phase = v1alpha1.AnalysisPhaseError
	run.Status.Message = "invalid spec, nothing measured: " + err.Error()
	run.Status.CompletedAt = &metav1.Time{Time: now}
	setCondition(&run.Status.Conditions, run.Generation, v1alpha1.ConditionValid, metav1.ConditionFalse, "InvalidSpec", err.Error())
	if retry, werr := r.writeStatus(ctx, run, before); retry || werr != nil {
		return reconcile.Result{RequeueAfter: retryAfter}, werr
	}
	r.Recorder.Eventf(run, nil, corev1.EventTypeWarning, "InvalidSpec", "Prepare", "%s", run.Status.Message)
	r.Metrics.runCompleted(run)
	log.FromContext(ctx).Info("analysis run has an invalid spec", "error", err.Error())
	return reconcile.Result{}, nil
}

// writeStatus persists status when it changed. The update carries the resourceVersion read,
// so a measurement taken on a stale copy is rejected (retry is true) rather than counted
// twice; a conflict is routine, not an error.
func (r *RunReconciler) writeStatus(ctx context.Context, run *v1alpha1.AnalysisRun, before *v1alpha1.AnalysisRunStatus) (retry bool, err error) {
	if equality.Semantic.DeepEqual(before, &run.Status) {
		return false, nil
	}
	body, err := json.Marshal(run)
	if err != nil {
		return false, fmt.Errorf("encoding status of %s/%s: %w", run.Namespace, run.Name, err)
	}
	err = r.Status.Put().Namespace(run.Namespace).Resource("analysisruns").Name(run.Name).SubResource("status").
		SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return apierrors.IsConflict(err), nil
		}
		return false, fmt.Errorf("writing status of %s/%s: %w", run.Namespace, run.Name, err)
	}
	return false, nil
}

// announce emits events for metrics (of runs of several) and the run reaching a verdict
// since before.
func (r *RunReconciler) announce(run *v1alpha1.AnalysisRun, before *v1alpha1.AnalysisRunStatus) {
	prev := map[string]v1alpha1.AnalysisPhase{}
	for _, mr := range before.MetricResults {
		prev[mr.Name] = mr.Phase
	}
	// A run of one metric ends with it: the run's Event says the same, and an Event is
	// an API write (the controller's most frequent after status, at a thousand runs).
	for _, mr := range run.Status.MetricResults {
		if len(run.Status.MetricResults) > 1 && mr.Phase.Completed() && !prev[mr.Name].Completed() {
			r.Recorder.Eventf(run, nil, eventType(mr.Phase), "Metric"+string(mr.Phase), "Measure", "metric %q %s: %s", mr.Name, mr.Phase, mr.Message)
		}
	}
	if run.Status.Phase.Completed() && !before.Phase.Completed() {
		r.Recorder.Eventf(run, nil, eventType(run.Status.Phase), "AnalysisRun"+string(run.Status.Phase), "Complete", "%s", run.Status.Message)
		r.Metrics.runCompleted(run)
	}
}

func eventType(p v1alpha1.AnalysisPhase) string {
	if p == v1alpha1.AnalysisPhaseSuccessful {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}

// release deletes what the measurements of a run that has ended left behind (its Jobs);
// a failure is retried, since nothing else would delete them before the run goes.
func (r *RunReconciler) release(ctx context.Context, run *v1alpha1.AnalysisRun) error {
	if err := r.Engine.Release(ctx, &run.Spec, *runOf(run)); err != nil {
		return fmt.Errorf("releasing what the measurements of %s/%s left: %w", run.Namespace, run.Name, err)
	}
	return nil
}

func runOf(run *v1alpha1.AnalysisRun) *providers.Run {
	return &providers.Run{Namespace: run.Namespace, Name: run.Name, UID: run.UID}
}

// collectGarbage deletes a finished run once its TTL has passed.
func (r *RunReconciler) collectGarbage(ctx context.Context, run *v1alpha1.AnalysisRun, now time.Time) (reconcile.Result, error) {
	ttl := run.Spec.TTLSecondsAfterFinished
	if ttl == nil || run.Status.CompletedAt == nil {
		return reconcile.Result{}, nil
	}
	expiry := run.Status.CompletedAt.Add(time.Duration(*ttl) * time.Second)
	if now.Before(expiry) {
		return reconcile.Result{RequeueAfter: expiry.Sub(now)}, nil
	}
	if err := r.Client.Delete(ctx, run, client.Preconditions{UID: &run.UID}); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("deleting expired run %s/%s: %w", run.Namespace, run.Name, err)
	}
	log.FromContext(ctx).Info("deleted finished analysis run after its TTL", "ttlSeconds", *ttl)
	return reconcile.Result{}, nil
}

// secretFunc reads a run's Secrets when its plan is prepared.
func (r *RunReconciler) secretFunc(namespace string) providers.SecretFunc {
	return func(ctx context.Context, name, key string) (string, error) {
		var s corev1.Secret
		if err := r.Secrets.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
			return "", err
		}
		v, ok := s.Data[key]
		if !ok {
			return "", fmt.Errorf("secret %s has no key %q", name, key)
		}
		return string(v), nil
	}
}

func templateName(run *v1alpha1.AnalysisRun) string {
	if len(run.Spec.Templates) > 0 {
		return run.Spec.Templates[0].Name
	}
	return run.Name
}

func setCondition(conds *[]metav1.Condition, generation int64, t string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation})
}
