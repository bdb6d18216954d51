package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/metricsq"
)

func runAnalyze(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return analyze(ctx, args, os.Stdout, os.Stderr)
}

// analyze runs one template's whole measurement lifecycle against a Prometheus, printing
// each measurement as it is taken, and returns the verdict as the exit code. Cancelling
// ctx (Ctrl-C) terminates the run: the verdict is then what was measured so far.
func analyze(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		file       = fs.String("f", "", "template file (AnalysisTemplate or ClusterAnalysisTemplate YAML)")
		name       = fs.String("template", "", "template to run when the file holds several")
		prometheus = fs.String("prometheus", "", "Prometheus base URL; overrides every prometheus metric's address")
		argList    stringList
	)
	fs.Var(&argList, "arg", "template argument name=value (repeatable); secret-backed args must be given this way")
	if err := fs.Parse(args); err != nil {
		return exitInvalidInput
	}
	invalid := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "promgate analyze: "+format+"\n", a...)
		return exitInvalidInput
	}
	if *file == "" {
		return invalid("no template file given (-f FILE)")
	}
	templates, err := loadTemplates(*file)
	if err != nil {
		return invalid("%v", err)
	}
	t, err := pickTemplate(templates, *name)
	if err != nil {
		return invalid("%s: %v", *file, err)
	}
	spec, err := runSpec(t, argList, *prometheus)
	if err != nil {
		return invalid("%s: %s: %v", *file, t, err)
	}
	exec, err := metricsq.NewExecutor(nil, metricsq.ExecutorOptions{})
	if err != nil {
		fmt.Fprintln(stderr, "promgate analyze:", err)
		return exitError
	}
	engine, err := analysis.NewEngine(exec, *prometheus)
	if err != nil {
		fmt.Fprintln(stderr, "promgate analyze:", err)
		return exitError
	}
	// Preparing outlives a Ctrl-C so that the run can still be terminated cleanly.
	plan, err := engine.Prepare(context.WithoutCancel(ctx), spec, nil)
	if err != nil {
		return invalid("%s: %s: %v", *file, t, err)
	}

	// Fixed widths rather than a tabwriter: lines are printed as measurements happen.
	const row = "%-8s  %-20s  %3v  %-12s  %-14s  %s\n"
	fmt.Fprintf(stdout, row, "TIME", "METRIC", "#", "PHASE", "VALUE", "MESSAGE")
	var (
		status v1alpha1.AnalysisRunStatus
		count  = map[string]int{}
	)
	for {
		terminate := ctx.Err() != nil
		taken, next := plan.Step(context.WithoutCancel(ctx), &status, time.Now(), terminate)
		for _, tk := range taken {
			count[tk.Metric]++
			m := tk.Measurement
			fmt.Fprintf(stdout, row, m.StartedAt.Format("15:04:05"), tk.Metric, count[tk.Metric], m.Phase, dash(m.Value), m.Message)
		}
		if status.Phase.Completed() {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(next)):
		}
	}
	fmt.Fprintf(stdout, "\nverdict: %s: %s\n", status.Phase, status.Message)
	return exitCode(status.Phase)
}

func pickTemplate(ts []template, name string) (template, error) {
	if name == "" {
		if len(ts) == 1 {
			return ts[0], nil
		}
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name
		}
		return template{}, fmt.Errorf("%d templates (%s): choose one with --template", len(ts), strings.Join(names, ", "))
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return template{}, fmt.Errorf("no template named %q", name)
}

// runSpec builds the run a controller would create from the template: template args with
// values, then --arg values, which win.
func runSpec(t template, args []string, prometheus string) (*v1alpha1.AnalysisRunSpec, error) {
	given := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q: want name=value", a)
		}
		given[k] = v
	}
	spec := &v1alpha1.AnalysisRunSpec{
		Metrics:              t.Spec.Metrics,
		DryRun:               t.Spec.DryRun,
		MeasurementRetention: t.Spec.MeasurementRetention,
	}
	declared := map[string]bool{}
	for _, a := range t.Spec.Args {
		declared[a.Name] = true
		v, ok := given[a.Name]
		switch {
		case ok:
		case a.Value != nil:
			v = *a.Value
		case a.ValueFrom != nil:
			return nil, fmt.Errorf("args[%s] comes from a Secret: pass it with --arg %s=VALUE", a.Name, a.Name)
		default:
			continue
		}
		spec.Args = append(spec.Args, v1alpha1.Argument{Name: a.Name, Value: &v})
	}
	for k := range given {
		if !declared[k] {
			return nil, fmt.Errorf("--arg %s: the template declares no such arg", k)
		}
	}
	if prometheus != "" {
		for i := range spec.Metrics {
			if p := spec.Metrics[i].Provider.Prometheus; p != nil {
				p.Address = prometheus
			}
		}
	}
	return spec, nil
}

func exitCode(p v1alpha1.AnalysisPhase) int {
	switch p {
	case v1alpha1.AnalysisPhaseSuccessful:
		return exitSuccessful
	case v1alpha1.AnalysisPhaseFailed:
		return exitFailed
	case v1alpha1.AnalysisPhaseInconclusive:
		return exitInconclusive
	}
	return exitError
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
