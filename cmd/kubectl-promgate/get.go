package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/promgate/promgate/api/v1alpha1"
)

// objectPrinter is -o json|yaml: the objects as the API server has them, for scripts.
func objectPrinter(output string) (printers.ResourcePrinter, error) {
	p, err := genericclioptions.NewJSONYamlPrintFlags().ToPrinter(output)
	if err != nil {
		return nil, fmt.Errorf("-o %s: want json or yaml", output)
	}
	// Objects read by a typed client carry no apiVersion and kind; the printer sets them.
	return printers.NewTypeSetter(scheme()).ToPrinter(p), nil
}

func (a *app) getCommand() *cobra.Command {
	get := &cobra.Command{Use: "get", Short: "Show a Rollout"}
	var (
		watching bool
		output   string
	)
	ro := &cobra.Command{
		Use:     "rollout NAME",
		Aliases: []string{"rollouts", "ro"},
		Short:   "Show a Rollout: its state, traffic, window and images, then its revisions, pods and analysis runs",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := a.connectIn()
			if err != nil {
				return err
			}
			if output != "" {
				p, err := objectPrinter(output)
				if err != nil {
					return err
				}
				ro, err := getRollout(cmd.Context(), c, ns, args[0])
				if err != nil {
					return err
				}
				return p.PrintObj(ro, a.stdout)
			}
			frame := func(ctx context.Context) (string, error) { return a.frame(ctx, c, ns, args[0]) }
			if watching {
				return a.watch(cmd.Context(), c, ns, args[0], frame)
			}
			f, err := frame(cmd.Context())
			if err != nil {
				return err
			}
			a.printf("%s", f)
			return nil
		},
	}
	a.rolloutArg(ro, 1)
	ro.Flags().BoolVarP(&watching, "watch", "w", false, "redraw on every change of the Rollout, its pods, runs and routes (at most 5 times a second)")
	ro.Flags().StringVarP(&output, "output", "o", "", "json or yaml: the Rollout object")
	get.AddCommand(ro)
	return get
}

// frame renders the Rollout as get shows it now.
func (a *app) frame(ctx context.Context, c client.Reader, ns, name string) (string, error) {
	ro, err := getRollout(ctx, c, ns, name)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	renderRollout(&b, readView(ctx, c, ro, a.now()), painter(a.color()))
	return b.String(), nil
}

func (a *app) listCommand() *cobra.Command {
	list := &cobra.Command{Use: "list", Short: "List Rollouts"}
	var (
		all    bool
		output string
	)
	ros := &cobra.Command{
		Use:     "rollouts",
		Aliases: []string{"rollout", "ro"},
		Short:   "List Rollouts: NAME STRATEGY STATUS STEP TRAFFIC READY AGE WINDOW",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			ns := ""
			if !all {
				if ns, err = a.namespace(); err != nil {
					return err
				}
				opts = append(opts, client.InNamespace(ns))
			}
			var list v1alpha1.RolloutList
			if err := c.List(cmd.Context(), &list, opts...); err != nil {
				return fmt.Errorf("listing Rollouts: %w", err)
			}
			if output != "" {
				p, err := objectPrinter(output)
				if err != nil {
					return err
				}
				return p.PrintObj(&list, a.stdout)
			}
			if len(list.Items) == 0 {
				where := "in namespace " + ns
				if all {
					where = "in any namespace"
				}
				fmt.Fprintf(a.stderr, "No Rollouts %s.\n", where)
				return nil
			}
			var deps appsv1.DeploymentList
			if err := c.List(cmd.Context(), &deps, opts...); err != nil {
				return fmt.Errorf("listing Deployments: %w", err)
			}
			renderList(a.stdout, list.Items, deps.Items, all, a.now(), painter(a.color()))
			return nil
		},
	}
	ros.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the Rollouts of every namespace")
	ros.Flags().StringVarP(&output, "output", "o", "", "json or yaml: the Rollout objects")
	list.AddCommand(ros)
	return list
}

// renderList writes list's table, sorted by namespace and name.
func renderList(w io.Writer, ros []v1alpha1.Rollout, deps []appsv1.Deployment, namespaces bool, now time.Time, paint painter) {
	ros = slices.Clone(ros)
	slices.SortFunc(ros, func(a, b v1alpha1.Rollout) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	t := table{paint: paint}
	head := []cell{text("NAME"), text("STRATEGY"), text("STATUS"), text("STEP"), text("TRAFFIC"), text("READY"), text("AGE"), text("WINDOW")}
	if namespaces {
		head = append([]cell{text("NAMESPACE")}, head...)
	}
	t.add(head...)
	for i := range ros {
		ro := &ros[i]
		strategy := "BlueGreen"
		if ro.Spec.Strategy.Canary != nil {
			strategy = "Canary"
		}
		step := "-"
		if releasing(ro) || ro.Status.Phase == v1alpha1.RolloutPhaseCompleted && ro.Status.CanaryRevision != "" {
			step = fmt.Sprintf("%d/%d", ro.Status.CurrentStepIndex, len(stepsOf(ro)))
		}
		weight := "-"
		if wt, ok := desiredTraffic(ro); ok {
			weight = fmt.Sprintf("%d%%", wt)
		}
		ready := "-"
		for _, d := range deps {
			if d.Namespace == ro.Namespace && d.Name == ro.Spec.WorkloadRef.Name && ro.Spec.WorkloadRef.Kind == "Deployment" {
				desired := int32(1)
				if d.Spec.Replicas != nil {
					desired = *d.Spec.Replicas
				}
				ready = fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, desired)
			}
		}
		window := "-"
		if line := windowLine(ro, now); line != "" {
			window, _, _ = strings.Cut(line, ",")
		}
		row := []cell{text(ro.Name), text(strategy), colored(phaseStatus(ro)), text(step), text(weight), text(ready), text(age(now.Sub(ro.CreationTimestamp.Time))), text(window)}
		if namespaces {
			row = append([]cell{text(ro.Namespace)}, row...)
		}
		t.add(row...)
	}
	t.write(w)
}
