package main

import (
	"context"
	"io"
	"os"

	"github.com/promgate/promgate/cmd/internal/analyzecmd"
)

func runAnalyze(args []string) int {
	ctx, stop := analyzecmd.InterruptContext()
	defer stop()
	return analyze(ctx, args, os.Stdout, os.Stderr)
}

// analyze runs a template against a Prometheus; kubectl-promgate's analyze is the same code.
func analyze(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return analyzecmd.Analyze(ctx, "promgate", args, stdout, stderr)
}
