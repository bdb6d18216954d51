package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
)

// redrawEvery bounds get -w to 5 frames a second, however busy the namespace.
const redrawEvery = 200 * time.Millisecond

// rewatchAfter is how long a watch the server ended waits before it is opened again.
const rewatchAfter = time.Second

// changes opens a watch on each kind of lists in ns and signals on the channel whenever
// one of them sees a change; a watch the server ends (they time out) is opened again.
// The error channel says why a watch could not be opened.
func changes(ctx context.Context, c client.WithWatch, ns string, lists ...client.ObjectList) (<-chan struct{}, <-chan error) {
	changed := make(chan struct{}, 1)
	failed := make(chan error, len(lists))
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	for _, list := range lists {
		go func() {
			for {
				w, err := c.Watch(ctx, list, client.InNamespace(ns))
				if err != nil {
					if ctx.Err() == nil {
						failed <- fmt.Errorf("watching %T in namespace %s: %w", list, ns, err)
					}
					return
				}
				// Whatever happened while no watch was open is drawn now.
				signal()
				stop := context.AfterFunc(ctx, w.Stop)
				for ev := range w.ResultChan() {
					if ev.Type == watch.Error {
						break
					}
					signal()
				}
				stop()
				w.Stop()
				select {
				case <-ctx.Done():
					return
				case <-time.After(rewatchAfter):
				}
			}
		}()
	}
	return changed, failed
}

// watchedLists are the kinds a Rollout's view is read from.
func watchedLists(ro *v1alpha1.Rollout) []client.ObjectList {
	lists := []client.ObjectList{&v1alpha1.RolloutList{}, &v1alpha1.AnalysisRunList{}, &appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}, &corev1.PodList{}}
	gateway, ingress, service := false, false, false
	if st, _ := ro.Spec.Strategy.Active(); st != nil {
		for _, tr := range st.TrafficRoutings {
			switch {
			case tr.Gateway != nil:
				gateway = true
			case tr.Ingress != nil:
				ingress = true
			default:
				service = true
			}
		}
	}
	if gateway {
		lists = append(lists, &gatewayv1.HTTPRouteList{})
	}
	if ingress {
		lists = append(lists, &networkingv1.IngressList{})
	}
	if service {
		lists = append(lists, &corev1.ServiceList{})
	}
	return lists
}

// watch draws a frame on every change, at most every redrawEvery; a frame the same as the
// last one is not drawn again. On a terminal each frame replaces the last.
func (a *app) watch(ctx context.Context, c client.WithWatch, ns, name string, frame func(context.Context) (string, error)) error {
	ro, err := getRollout(ctx, c, ns, name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed, failed := changes(ctx, c, ns, watchedLists(ro)...)
	var last string
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case err := <-failed:
				return err
			case <-changed:
			}
		}
		f, err := frame(ctx)
		if err != nil {
			return err
		}
		if f != last {
			switch {
			case a.terminal:
				a.printf("\x1b[H\x1b[2J%s", f)
			case !first:
				a.printf("\n%s", f)
			default:
				a.printf("%s", f)
			}
			last = f
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(redrawEvery):
		}
	}
}

// Exit codes of status, for CI.
const (
	statusDone    = 0
	statusFailed  = 1
	statusPaused  = 2
	statusTimeout = 3
	// statusError is a Rollout that cannot be read or judged, or bad usage.
	statusError = 4
)

// verdict is what status makes of a Rollout: a line to print and, once it is settled, an
// exit code.
type verdict struct {
	line  string
	final bool
	code  int
}

// judge reads where a release is. It judges only a Rollout whose controller has seen its
// latest spec and workload, so that the state of a previous release is never taken for
// the outcome of one just applied.
func judge(ro *v1alpha1.Rollout, w workload) verdict {
	st := ro.Status
	line := fmt.Sprintf("%s %s", phaseStatus(ro), stepOf(ro))
	if st.CurrentStepState != "" {
		line += " " + string(st.CurrentStepState)
	}
	if st.Message != "" {
		line += ": " + st.Message
	}
	if c := invalid(ro); c != nil {
		// A reference created after the Rollout is found on the controller's next look.
		if c.Reason == "InvalidReference" {
			return verdict{line: "waiting: " + c.Message}
		}
		return verdict{line: "invalid: " + c.Message, final: true, code: statusFailed}
	}
	if st.ObservedGeneration < ro.Generation {
		return verdict{line: fmt.Sprintf("waiting for the controller to see the Rollout's generation %d", ro.Generation)}
	}
	if w != nil && st.ObservedWorkloadGeneration < w.generation() {
		return verdict{line: fmt.Sprintf("waiting for the controller to see %s at generation %d", w.describe(), w.generation())}
	}
	switch st.Phase {
	case v1alpha1.RolloutPhaseHealthy:
		return verdict{line: line, final: true, code: statusDone}
	case v1alpha1.RolloutPhaseCompleted:
		if st.CanaryRevision == "" {
			return verdict{line: line, final: true, code: statusDone}
		}
	case v1alpha1.RolloutPhaseAborted, v1alpha1.RolloutPhaseCancelled:
		return verdict{line: line, final: true, code: statusFailed}
	case v1alpha1.RolloutPhasePaused:
		// A closed window opens by itself; spec.paused, a pause for a human or an
		// inconclusive analysis waits for one.
		if !st.Held {
			return verdict{line: line, final: true, code: statusPaused}
		}
	case v1alpha1.RolloutPhaseDisabled:
		return verdict{line: line + ": it releases nothing", final: true, code: statusError}
	}
	return verdict{line: line}
}

func (a *app) statusCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status NAME [--timeout D]",
		Short: "Wait for a release; exit 0 done, 1 aborted, cancelled or invalid, 2 paused for a human, 3 timed out, 4 cannot tell",
		Long: `status prints one line per change of the Rollout and exits when the release is settled:
0 Completed (the old version gone) or Healthy, 1 Aborted, Cancelled or an invalid spec,
2 Paused waiting for a human (a pause step, an inconclusive analysis, spec.paused),
3 the timeout passed, 4 the Rollout cannot be read or judged (unknown, forbidden, disabled).
A Rollout held by a closed release window is waited for. This is what CI calls after
kubectl apply.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.connectIn()
			if err != nil {
				return &exitError{code: statusError, err: err}
			}
			return a.status(cmd.Context(), c, ns, args[0], timeout)
		},
	}
	a.rolloutArg(cmd, 1)
	args := cmd.Args
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return &exitError{code: statusError, err: err}
		}
		return nil
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: statusError, err: err} })
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long with exit code 3; 0 waits for ever")
	return cmd
}

// status waits for the release to settle, printing a line per change.
func (a *app) status(ctx context.Context, c client.WithWatch, ns, name string, timeout time.Duration) error {
	fail := func(err error) error { return &exitError{code: statusError, err: err} }
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	changed, failed := changes(watchCtx, c, ns, &v1alpha1.RolloutList{}, &appsv1.DeploymentList{})
	var last string
	for {
		ro, err := getRollout(ctx, c, ns, name)
		if errors.Is(err, context.DeadlineExceeded) {
			return a.timedOut(timeout, last)
		}
		if err != nil {
			return fail(err)
		}
		w, err := loadWorkload(ctx, c, ro)
		if err != nil && !isRefusal(err) {
			if errors.Is(err, context.DeadlineExceeded) {
				return a.timedOut(timeout, last)
			}
			return fail(err)
		}
		v := judge(ro, w)
		if v.line != last {
			a.printf("%s\n", v.line)
			last = v.line
		}
		if v.final {
			return exitCode(v.code)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return a.timedOut(timeout, last)
			}
			return fail(ctx.Err())
		case err := <-failed:
			return fail(err)
		case <-changed:
		}
	}
}

func (a *app) timedOut(timeout time.Duration, last string) error {
	return &exitError{code: statusTimeout, err: fmt.Errorf("timed out after %s; last: %s", timeout, last)}
}
