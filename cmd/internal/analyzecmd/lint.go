// Package analyzecmd is the lint and analyze commands that promgate and kubectl-promgate
// share: AnalysisTemplate files checked, and run against a Prometheus, with no cluster.
package analyzecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/providers/shared"
)

// Exit codes of analyze follow the verdict; lint and usage errors share the last one.
const (
	// ExitSuccessful is a Successful verdict, or every template valid.
	ExitSuccessful = 0
	// ExitFailed is a Failed verdict, or a template with problems.
	ExitFailed = 1
	// ExitInconclusive is an Inconclusive verdict.
	ExitInconclusive = 2
	// ExitError is an Error verdict, or a failure to set the run up.
	ExitError = 3
	// ExitInvalidInput is a usage error, or a file that cannot be read or is not YAML.
	ExitInvalidInput = 4
)

const lintUsage = `usage: %s lint [-f] FILE...

Validates AnalysisTemplate and ClusterAnalysisTemplate files (multi-document YAML) with no
cluster: fields and their types, args, PromQL syntax, conditions, durations, limits and Job
specs. Prints one line per problem, "FILE: Kind/NAME: FIELD: message", one per warning,
"FILE: Kind/NAME: FIELD: warning: message" (a condition that would make every measurement
an Error), and "FILE: Kind/NAME: ok (N metrics)" for each valid template.

exit code: 0 all valid (warnings or not), 1 a template has problems, 4 a file cannot be
read or is not YAML

flags:
`

// Lint checks every template of every file, reporting all problems rather than stopping at
// the first, so one run lists everything to fix; prog names the binary in messages.
func Lint(prog string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, lintUsage, prog)
		fs.PrintDefaults()
	}
	var files stringList
	fs.Var(&files, "f", "template `FILE` (repeatable); files may also be given as arguments")
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitSuccessful
	}
	if err != nil {
		return ExitInvalidInput
	}
	files = append(files, positional...)
	if len(files) == 0 {
		fmt.Fprintf(stderr, "%s lint: no file given (-f FILE)\n", prog)
		return ExitInvalidInput
	}
	exec, err := shared.NewExecutor(nil, shared.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "%s lint: creating the query executor: %v\n", prog, err)
		return ExitError
	}
	// No default address: validation puts a placeholder in metrics that name none.
	engine := analysis.NewEngine(exec, "", analysis.Cluster{})
	code := ExitSuccessful
	for _, f := range files {
		templates, err := loadTemplates(f)
		if err != nil {
			// One line, as every problem: the YAML decoder lists its errors on lines of
			// their own.
			fmt.Fprintln(stdout, strings.Join(strings.Fields(err.Error()), " "))
			code = ExitInvalidInput
			continue
		}
		for _, t := range templates {
			found, warnings := validate(engine, t.Spec, t.Problems)
			problems := slices.Concat(t.Problems, found)
			for _, w := range warnings {
				w.Detail = "warning: " + w.Detail
				fmt.Fprintln(stdout, t.line(w))
			}
			if len(problems) == 0 {
				included := ""
				if n := len(t.Spec.Templates); n > 0 {
					included = fmt.Sprintf(", %d included templates", n)
				}
				fmt.Fprintf(stdout, "%s: %s: ok (%d metrics%s)\n", t.File, t, len(t.Spec.Metrics), included)
				continue
			}
			for _, p := range problems {
				fmt.Fprintln(stdout, t.line(p))
			}
			if code == ExitSuccessful {
				code = ExitFailed
			}
		}
	}
	return code
}

// validate runs the engine's checks (PromQL, conditions, durations, limits, auth shape,
// Job specs) on spec and returns its problems and warnings; Secrets are not read, as the
// template controller does not read them either. A field already reported by the
// structural checks is not reported twice.
func validate(engine *analysis.Engine, spec *v1alpha1.AnalysisTemplateSpec, known field.ErrorList) (problems, warnings field.ErrorList) {
	if spec == nil {
		return nil, nil
	}
	found, warned := engine.ValidateTemplate(context.Background(), spec)
	for _, p := range found.Fields() {
		if !slices.ContainsFunc(known, func(k *field.Error) bool { return k.Field == p.Field }) {
			problems = append(problems, p)
		}
	}
	return problems, warned.Fields()
}
