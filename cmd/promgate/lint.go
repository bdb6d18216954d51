package main

import (
	"io"

	"github.com/promgate/promgate/cmd/internal/analyzecmd"
)

// lint validates template files; kubectl-promgate's lint is the same code.
func lint(args []string, stdout, stderr io.Writer) int {
	return analyzecmd.Lint("promgate", args, stdout, stderr)
}
