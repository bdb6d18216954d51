package analyzecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
	"github.com/promgate/promgate/providers/shared"
)

const analyzeUsage = `usage: %s analyze -f FILE [--template NAME] [--prometheus URL] [--arg NAME=VALUE]...

Runs a template's measurements against a Prometheus with no cluster, as an AnalysisRun
would: one line per measurement as it is taken, then the verdict. Ctrl-C terminates the
run with the verdict of what was measured so far; a second Ctrl-C quits at once.

exit code: 0 Successful, 1 Failed, 2 Inconclusive, 3 Error, 4 invalid input

flags:
`

// InterruptContext is cancelled by the first Ctrl-C or SIGTERM, for Analyze to end its run
// with the verdict so far; stop releases it.
func InterruptContext() (ctx context.Context, stop func()) {
	ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default handling comes back, so a second Ctrl-C kills
	// the process even while a slow query holds up the terminating step.
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// Analyze runs one template's whole measurement lifecycle against a Prometheus, printing
// each measurement as it is taken, and returns the verdict as the exit code; prog names
// the binary in messages. Cancelling ctx (Ctrl-C) terminates the run: the verdict is then
// what was measured so far.
func Analyze(ctx context.Context, prog string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, analyzeUsage, prog)
		fs.PrintDefaults()
	}
	var (
		file       = fs.String("f", "", "template `FILE` (AnalysisTemplate or ClusterAnalysisTemplate YAML); may also be given as the argument")
		name       = fs.String("template", "", "template `NAME` to run when the file holds several")
		prometheus = fs.String("prometheus", "", "Prometheus base `URL`; overrides the address of every prometheus and judge metric")
		argList    stringList
	)
	fs.Var(&argList, "arg", "template argument `NAME=VALUE` (repeatable); overrides the template's value; secret-backed args must be given this way")
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitSuccessful
	}
	if err != nil {
		return ExitInvalidInput
	}
	invalid := func(format string, a ...any) int {
		fmt.Fprintf(stderr, prog+" analyze: "+format+"\n", a...)
		return ExitInvalidInput
	}
	switch {
	case len(positional) > 1 || len(positional) == 1 && *file != "":
		if *file != "" {
			positional = append(positional, *file)
		}
		return invalid("one template file at a time; got %s", strings.Join(positional, ", "))
	case len(positional) == 1:
		*file = positional[0]
	case *file == "":
		return invalid("no template file given (-f FILE)")
	}

	templates, err := loadTemplates(*file)
	if err != nil {
		return invalid("%v", err)
	}
	// Any broken document stops the run, even when another one is picked: the file is what
	// users edit, and lint would reject it as a whole.
	broken := false
	for _, t := range templates {
		for _, p := range t.Problems {
			invalid("%s", t.line(p))
			broken = true
		}
	}
	if broken {
		return ExitInvalidInput
	}
	t, err := pickTemplate(templates, *name)
	if err != nil {
		return invalid("%s: %v", *file, err)
	}
	spec, unset, err := runSpec(t, templates, argList, *prometheus)
	if err != nil {
		return invalid("%s: %s: %v", t.File, t, err)
	}
	exec, err := shared.NewExecutor(nil, shared.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "%s analyze: creating the query executor: %v\n", prog, err)
		return ExitError
	}
	// No cluster: a job metric is refused, as nothing could run its Job.
	engine := analysis.NewEngine(exec, *prometheus, analysis.Cluster{})
	// Preparing reads no secrets and queries nothing, so a Ctrl-C cannot make it wait.
	plan, err := engine.Prepare(context.WithoutCancel(ctx), spec, nil, nil)
	if err != nil {
		problems := fielderr.From(err)
		for _, p := range problems {
			invalid("%s", t.line(p.Field))
		}
		if missing := missingArgs(problems, unset); len(missing) > 0 {
			invalid("the template gives no value to an arg the query uses: add %s", strings.Join(missing, " "))
		}
		return ExitInvalidInput
	}

	// Said at once, not after the step in progress, which may be waiting on a query; the
	// loop says it too, in case it sees the interrupt before the AfterFunc has run.
	var interrupted sync.Once
	sayInterrupted := func() {
		interrupted.Do(func() {
			fmt.Fprintf(stderr, "%s analyze: interrupted: terminating the run (Ctrl-C again quits at once)\n", prog)
		})
	}
	defer context.AfterFunc(ctx, sayInterrupted)()

	out := newProgress(stdout, plan)
	fmt.Fprintf(stdout, "running %s from %s: %d metrics\n\n", t, t.File, len(plan.Metrics))
	out.header()
	var status v1alpha1.AnalysisRunStatus
	for {
		terminate := ctx.Err() != nil
		if terminate {
			sayInterrupted()
		}
		// Queries run to their own timeout rather than being cut by Ctrl-C: a cancelled
		// query would count as an Error measurement and could change the verdict.
		taken, next := plan.Step(context.WithoutCancel(ctx), &status, time.Now(), terminate)
		out.measurements(taken)
		if status.Phase.Completed() {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(next)):
		}
	}
	if len(status.MetricResults) > 1 {
		out.summary(status.MetricResults)
	}
	fmt.Fprintf(stdout, "\nverdict: %s: %s\n", status.Phase, status.Message)
	return exitCode(status.Phase)
}

// progress prints measurements in columns sized to the plan's metric names. Each line is
// written as soon as its measurement is taken (stdout is unbuffered), so the columns are
// fixed up front instead of measured over the whole output as a tabwriter would.
type progress struct {
	w      io.Writer
	row    string
	order  map[string]int
	dryRun map[string]bool
	count  map[string]int
}

func newProgress(w io.Writer, plan *analysis.Plan) *progress {
	p := &progress{w: w, order: map[string]int{}, dryRun: map[string]bool{}, count: map[string]int{}}
	width := len("METRIC")
	for i, pm := range plan.Metrics {
		p.order[pm.Spec.Name] = i
		p.dryRun[pm.Spec.Name] = pm.DryRun
		width = max(width, len(p.metric(pm.Spec.Name)))
	}
	p.row = fmt.Sprintf("%%-8s  %%-%ds  %%3v  %%-12s  %%-14s  %%s\n", width)
	return p
}

func (p *progress) metric(name string) string {
	if p.dryRun[name] {
		return name + " (dry run)"
	}
	return name
}

func (p *progress) header() {
	fmt.Fprintf(p.w, p.row, "TIME", "METRIC", "#", "PHASE", "VALUE", "MESSAGE")
}

// measurements prints one step's measurements in the plan's metric order; the engine
// returns them in the order they finished.
func (p *progress) measurements(taken []analysis.Taken) {
	slices.SortStableFunc(taken, func(a, b analysis.Taken) int { return p.order[a.Metric] - p.order[b.Metric] })
	for _, tk := range taken {
		p.count[tk.Metric]++
		m := tk.Measurement
		at := "-"
		if m.StartedAt != nil {
			at = m.StartedAt.Format("15:04:05")
		}
		fmt.Fprintf(p.w, p.row, at, p.metric(tk.Metric), p.count[tk.Metric], m.Phase, dash(m.Value), dash(m.Message))
	}
}

// summary shows each metric's outcome, which the verdict line gives only for the metric
// that decided.
func (p *progress) summary(results []v1alpha1.MetricResult) {
	fmt.Fprintln(p.w)
	for _, mr := range results {
		fmt.Fprintf(p.w, p.row, "", p.metric(mr.Name), "", mr.Phase, "", mr.Message)
	}
}

func pickTemplate(ts []template, name string) (template, error) {
	names := make([]string, len(ts))
	for i, t := range ts {
		if name != "" && t.Name == name {
			return t, nil
		}
		names[i] = t.Name
	}
	switch {
	case name != "":
		return template{}, fmt.Errorf("no template named %q (the file has %s)", name, strings.Join(names, ", "))
	case len(ts) > 1:
		return template{}, fmt.Errorf("%d templates (%s): choose one with --template", len(ts), strings.Join(names, ", "))
	}
	return ts[0], nil
}

// runSpec builds the run a controller would create from the template t, with the
// templates it includes (spec.templates), which must be among all, the file's: template
// args with values, overridden or supplied by --arg. unset lists the args left without a
// value, which is an error only if a field uses one.
func runSpec(t template, all []template, args []string, prometheus string) (spec *v1alpha1.AnalysisRunSpec, unset []string, err error) {
	given := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("--arg %q: want name=value", a)
		}
		given[k] = v
	}
	included, err := analysis.Expand(field.NewPath("spec", "templates"), t.Spec.Templates, func(path *field.Path, ref v1alpha1.RolloutAnalysisTemplate) (*v1alpha1.AnalysisTemplateSpec, error) {
		kind := "AnalysisTemplate"
		if ref.ClusterScope {
			kind = "ClusterAnalysisTemplate"
		}
		for _, o := range all {
			if o.Kind == kind && o.Name == ref.TemplateName && o.Spec != nil {
				return o.Spec, nil
			}
		}
		return nil, fielderr.WithDetail(field.NotFound(path.Child("templateName"), ref.TemplateName),
			fmt.Sprintf("includes %s %s, which is not in the file", kind, ref.TemplateName))
	})
	if fe, ok := errors.AsType[*field.Error](err); ok {
		return nil, nil, &fielderr.Error{Field: fe}
	}
	if err != nil {
		return nil, nil, err
	}
	// The template is not modified: metrics are deep-copied before addresses change.
	spec = &v1alpha1.AnalysisRunSpec{Templates: []v1alpha1.AnalysisTemplateRef{{Name: t.Name, ClusterScope: t.Kind == "ClusterAnalysisTemplate"}}}
	var declared []v1alpha1.Argument
	for i, ts := range append([]*v1alpha1.AnalysisTemplateSpec{t.Spec}, specsOf(included)...) {
		ts = ts.DeepCopy()
		for _, m := range ts.Metrics {
			if slices.ContainsFunc(spec.Metrics, func(x v1alpha1.Metric) bool { return x.Name == m.Name }) {
				return nil, nil, fmt.Errorf("two of the templates have a metric %s", m.Name)
			}
			spec.Metrics = append(spec.Metrics, m)
		}
		for _, a := range ts.Args {
			// A value an earlier template gives stands, as when a Rollout builds the run.
			j := slices.IndexFunc(declared, func(d v1alpha1.Argument) bool { return d.Name == a.Name })
			switch {
			case j < 0:
				declared = append(declared, a)
			case declared[j].Value == nil && declared[j].ValueFrom == nil:
				declared[j] = a
			}
		}
		spec.DryRun = append(spec.DryRun, ts.DryRun...)
		spec.MeasurementRetention = append(spec.MeasurementRetention, ts.MeasurementRetention...)
		if i > 0 {
			ref := included[i-1].Ref
			spec.Templates = append(spec.Templates, v1alpha1.AnalysisTemplateRef{Name: ref.TemplateName, ClusterScope: ref.ClusterScope})
		}
	}
	for _, a := range declared {
		v, ok := given[a.Name]
		switch {
		case ok:
		case a.Value != nil:
			v = *a.Value
		case a.ValueFrom != nil && a.ValueFrom.FieldRef != nil:
			// No Rollout, so no field to read it from.
			return nil, nil, fmt.Errorf("args[%s] comes from the Rollout's %s: give its value with --arg %s=VALUE", a.Name, a.ValueFrom.FieldRef.FieldPath, a.Name)
		case a.ValueFrom != nil:
			// No cluster, so no Secret to read it from.
			return nil, nil, fmt.Errorf("args[%s] comes from a Secret: give its value with --arg %s=VALUE", a.Name, a.Name)
		default:
			unset = append(unset, a.Name)
			continue
		}
		spec.Args = append(spec.Args, v1alpha1.Argument{Name: a.Name, Value: &v})
	}
	for _, k := range slices.Sorted(maps.Keys(given)) {
		if !slices.ContainsFunc(declared, func(d v1alpha1.Argument) bool { return d.Name == k }) {
			return nil, nil, fmt.Errorf("--arg %s: the template declares no such arg", k)
		}
	}
	if prometheus != "" {
		for i := range spec.Metrics {
			if p := spec.Metrics[i].Provider.Prometheus; p != nil {
				p.Address = prometheus
			}
			// A judge without a prometheus field already takes the default, --prometheus.
			if j := spec.Metrics[i].Provider.Judge; j != nil && j.Prometheus != nil {
				j.Prometheus.Address = prometheus
			}
		}
	}
	return spec, unset, nil
}

func specsOf(included []analysis.Included) []*v1alpha1.AnalysisTemplateSpec {
	out := make([]*v1alpha1.AnalysisTemplateSpec, len(included))
	for i, inc := range included {
		out[i] = inc.Spec
	}
	return out
}

// missingArgs suggests an --arg for each of the template's unset args that a problem says
// is missing, in the template's order.
func missingArgs(problems fielderr.List, unset []string) []string {
	var flags []string
	for _, name := range unset {
		if slices.ContainsFunc(problems, func(p *fielderr.Error) bool {
			undefined, ok := errors.AsType[*metricsq.UndefinedArgError](p)
			return ok && undefined.Name == name
		}) {
			flags = append(flags, "--arg "+name+"=VALUE")
		}
	}
	return flags
}

func exitCode(p v1alpha1.AnalysisPhase) int {
	switch p {
	case v1alpha1.AnalysisPhaseSuccessful:
		return ExitSuccessful
	case v1alpha1.AnalysisPhaseFailed:
		return ExitFailed
	case v1alpha1.AnalysisPhaseInconclusive:
		return ExitInconclusive
	}
	return ExitError
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
