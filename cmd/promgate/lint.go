package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/metricsq"
)

func runLint(args []string) int {
	return lint(args, os.Stdout, os.Stderr)
}

// lint prints one line per template: "ok" or each problem located by file, template,
// metric and field. It exits 1 when a template is broken and 4 when a file is unreadable.
func lint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files stringList
	fs.Var(&files, "f", "template file (repeatable; multi-document YAML); files may also be given as arguments")
	if err := fs.Parse(args); err != nil {
		return exitInvalidInput
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "promgate lint: no file given (-f FILE)")
		return exitInvalidInput
	}
	exec, err := metricsq.NewExecutor(nil, metricsq.ExecutorOptions{})
	if err != nil {
		fmt.Fprintln(stderr, "promgate lint:", err)
		return exitError
	}
	engine, err := analysis.NewEngine(exec, "")
	if err != nil {
		fmt.Fprintln(stderr, "promgate lint:", err)
		return exitError
	}
	code := exitSuccessful
	for _, f := range files {
		templates, err := loadTemplates(f)
		if err != nil {
			fmt.Fprintln(stdout, err)
			code = exitInvalidInput
			continue
		}
		for _, t := range templates {
			errs := engine.ValidateTemplate(context.Background(), &t.Spec)
			if len(errs) == 0 {
				fmt.Fprintf(stdout, "%s: %s: ok (%d metrics)\n", t.File, t, len(t.Spec.Metrics))
				continue
			}
			for _, e := range errs {
				fmt.Fprintf(stdout, "%s: %s: %v\n", t.File, t, e)
			}
			if code == exitSuccessful {
				code = exitFailed
			}
		}
	}
	return code
}
