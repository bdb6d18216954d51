package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/promgate/promgate/api/v1alpha1"
)

// The human commands. Each is one documented change of the Rollout (README, "Releasing
// with a Rollout"), decided on a fresh read of it. Holds (spec.paused, a closed release
// window) refuse what would move a release on by itself, approve and promote; abort,
// retry and jump still act, and the hold keeps the release where they put it.

// releasing says whether a release is under way, possibly paused or aborted, as the
// controller has it.
func releasing(ro *v1alpha1.Rollout) bool {
	switch ro.Status.Phase {
	case v1alpha1.RolloutPhaseProgressing, v1alpha1.RolloutPhasePaused, v1alpha1.RolloutPhaseAborted:
		return true
	}
	return false
}

// stepOf is "step 2/3", or "no step" before the first.
func stepOf(ro *v1alpha1.Rollout) string {
	if ro.Status.CurrentStepIndex < 1 {
		return "no step"
	}
	return fmt.Sprintf("step %d/%d", ro.Status.CurrentStepIndex, len(stepsOf(ro)))
}

func stepsOf(ro *v1alpha1.Rollout) []v1alpha1.RolloutStep {
	st, _ := ro.Spec.Strategy.Active()
	if st == nil {
		return nil
	}
	return st.Steps
}

func noRelease(ro *v1alpha1.Rollout, what string) error {
	return refuse("Rollout %s has no release in progress (phase %s): there is nothing to %s", ro.Name, ro.Status.Phase, what)
}

// notHeld refuses a command that moves the release on while a hold keeps it.
func notHeld(ro *v1alpha1.Rollout, what string) error {
	switch {
	case ro.Spec.Paused:
		return refuse("Rollout %s is held (spec.paused): resume it first to %s (kubectl promgate resume %s)", ro.Name, what, ro.Name)
	case ro.Status.Held:
		next := ""
		if w := ro.Status.Window; w != nil && w.NextOpen != "" {
			next = ", which opens at " + w.NextOpen
		}
		return refuse("Rollout %s waits for its release window%s: it goes on then; %s does not open it", ro.Name, next, what)
	}
	return nil
}

// approve moves a paused step on: status.currentStepState StepReady.
func approve(ro *v1alpha1.Rollout) (string, error) {
	st := &ro.Status
	switch {
	case !releasing(ro):
		return "", noRelease(ro, "approve")
	case st.Phase == v1alpha1.RolloutPhaseAborted:
		return "", refuse("Rollout %s is aborted (%s): retry it or jump to a step", ro.Name, st.AbortReason)
	}
	if err := notHeld(ro, "approve"); err != nil {
		return "", err
	}
	if st.CurrentStepState != v1alpha1.StepPaused {
		return "", refuse("Rollout %s is not paused: %s is in %s (phase %s); approve moves a paused step on", ro.Name, stepOf(ro), st.CurrentStepState, st.Phase)
	}
	st.CurrentStepState = v1alpha1.StepReady
	return fmt.Sprintf("Rollout %s: %s approved (status.currentStepState: StepReady)", ro.Name, stepOf(ro)), nil
}

// promoteFull skips the remaining steps, analyses and pauses: status.promoteFull.
func promoteFull(ro *v1alpha1.Rollout) (string, error) {
	if !releasing(ro) {
		return "", noRelease(ro, "promote")
	}
	if err := notHeld(ro, "promote"); err != nil {
		return "", err
	}
	ro.Status.PromoteFull = true
	return fmt.Sprintf("Rollout %s: promoted to the end from %s (status.promoteFull: true): the remaining steps, analyses and pauses are skipped", ro.Name, stepOf(ro)), nil
}

// abort sends all traffic back to the stable version: status.abort.
func abort(ro *v1alpha1.Rollout) (string, error) {
	switch {
	case !releasing(ro):
		return "", noRelease(ro, "abort")
	case ro.Status.Phase == v1alpha1.RolloutPhaseAborted:
		return "", refuse("Rollout %s is already aborted (%s)", ro.Name, ro.Status.AbortReason)
	}
	ro.Status.Abort = true
	return fmt.Sprintf("Rollout %s: aborted at %s (status.abort: true): all traffic goes back to the stable version", ro.Name, stepOf(ro)), nil
}

// retryAborted restarts an aborted release from step 1: status.nextStepIndex 1.
func retryAborted(ro *v1alpha1.Rollout) (string, error) {
	if ro.Status.Phase != v1alpha1.RolloutPhaseAborted {
		return "", refuse("Rollout %s is not aborted (phase %s): retry restarts an aborted release; jump moves one in progress", ro.Name, ro.Status.Phase)
	}
	ro.Status.NextStepIndex = 1
	return fmt.Sprintf("Rollout %s: retried from step 1 (status.nextStepIndex: 1)%s", ro.Name, heldNote(ro)), nil
}

// jumpTo moves a release to a step, forwards or back (on an aborted one, a retry from
// there): status.nextStepIndex.
func jumpTo(arg string) func(ro *v1alpha1.Rollout) (string, error) {
	return func(ro *v1alpha1.Rollout) (string, error) {
		n := len(stepsOf(ro))
		step, err := strconv.Atoi(arg)
		if err != nil || step < 1 || step > n {
			return "", refuse("step %s does not exist: Rollout %s has steps 1 to %d", arg, ro.Name, n)
		}
		if !releasing(ro) {
			return "", noRelease(ro, "jump")
		}
		what := "jumped from " + stepOf(ro)
		if ro.Status.Phase == v1alpha1.RolloutPhaseAborted {
			what = "retried"
		}
		ro.Status.NextStepIndex = int32(step)
		return fmt.Sprintf("Rollout %s: %s to step %d/%d (status.nextStepIndex: %d)%s", ro.Name, what, step, n, step, heldNote(ro)), nil
	}
}

// heldNote tells that a hold keeps the release at the step a command moved it to.
func heldNote(ro *v1alpha1.Rollout) string {
	switch {
	case ro.Spec.Paused:
		return "; it is held (spec.paused) and stays there until resumed"
	case ro.Status.Held:
		return "; it waits there for its release window"
	}
	return ""
}

// pause holds a release where it is: spec.paused true.
func pause(ro *v1alpha1.Rollout) (string, error) {
	if ro.Spec.Paused {
		return "", refuse("Rollout %s is already held (spec.paused); resume releases it", ro.Name)
	}
	ro.Spec.Paused = true
	return fmt.Sprintf("Rollout %s: held at %s (spec.paused: true): no step is promoted until kubectl promgate resume %s", ro.Name, stepOf(ro), ro.Name), nil
}

// resume ends the hold: spec.paused false.
func resume(ro *v1alpha1.Rollout) (string, error) {
	if !ro.Spec.Paused {
		why := ""
		if ro.Status.Phase == v1alpha1.RolloutPhasePaused {
			why = fmt.Sprintf("; it is paused at %s for another reason: %s", stepOf(ro), ro.Status.Message)
		}
		return "", refuse("Rollout %s is not held (spec.paused is not set)%s", ro.Name, why)
	}
	ro.Spec.Paused = false
	return fmt.Sprintf("Rollout %s: resumed at %s (spec.paused: false)", ro.Name, stepOf(ro)), nil
}

// changeCommand is a command NAME [ARG] that applies one change to the Rollout.
func (a *app) changeCommand(use, short string, args int, status bool, decide func(args []string) func(*v1alpha1.Rollout) (string, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.connectIn()
			if err != nil {
				return err
			}
			done, err := apply(cmd.Context(), c, ns, args[0], change{status: status, decide: decide(args)})
			if err != nil {
				return err
			}
			a.printf("%s\n", done)
			return nil
		},
	}
	a.rolloutArg(cmd, args)
	return cmd
}

// fixed is a decision that takes no argument.
func fixed(d func(*v1alpha1.Rollout) (string, error)) func([]string) func(*v1alpha1.Rollout) (string, error) {
	return func([]string) func(*v1alpha1.Rollout) (string, error) { return d }
}

func (a *app) approveCommand() *cobra.Command {
	return a.changeCommand("approve NAME", `A paused step goes on: status {"currentStepState":"StepReady"}`, 1, true, fixed(approve))
}

func (a *app) promoteCommand() *cobra.Command {
	var full bool
	cmd := a.changeCommand("promote NAME [--full]", `Approve a paused step, or with --full skip the remaining steps, analyses and pauses: status {"promoteFull":true}`, 1, true,
		func([]string) func(*v1alpha1.Rollout) (string, error) {
			if full {
				return promoteFull
			}
			return approve
		})
	cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps, analyses and pauses and complete the release")
	return cmd
}

func (a *app) abortCommand() *cobra.Command {
	return a.changeCommand("abort NAME", `All traffic back to the stable version, phase Aborted: status {"abort":true}`, 1, true, fixed(abort))
}

func (a *app) retryCommand() *cobra.Command {
	return a.changeCommand("retry NAME", `Restart an aborted release from step 1: status {"nextStepIndex":1}`, 1, true, fixed(retryAborted))
}

func (a *app) jumpCommand() *cobra.Command {
	return a.changeCommand("jump NAME STEP", `Go to step STEP, forwards or back (1 = no traffic to the new version): status {"nextStepIndex":STEP}`, 2, true,
		func(args []string) func(*v1alpha1.Rollout) (string, error) { return jumpTo(args[1]) })
}

func (a *app) pauseCommand() *cobra.Command {
	return a.changeCommand("pause NAME", `Hold the release where it is, no step promoted by time, window or analysis: spec {"paused":true}`, 1, false, fixed(pause))
}

func (a *app) resumeCommand() *cobra.Command {
	return a.changeCommand("resume NAME", `End the hold: spec {"paused":false}`, 1, false, fixed(resume))
}
