// Command kubectl-promgate is the kubectl plugin people drive promgate releases with
// (kubectl promgate ...): it reads a Rollout as a tree of revisions, pods and analysis
// runs, waits for a release in CI, and turns each human command into the documented
// status patch or spec change, checked against the Rollout's state first.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

func main() {
	a := newApp(os.Stdout, os.Stderr)
	os.Exit(a.run(context.Background(), os.Args[1:]))
}

// run executes one command line and returns its exit code; every error is one line.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var ec *exitError
	if errors.As(err, &ec) {
		code = ec.code
		err = ec.err
	}
	if err != nil {
		fmt.Fprintln(a.stderr, "error: "+oneLine(err.Error()))
	}
	return code
}

// exitError ends a command with code; a nil err says the command printed why already.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// oneLine keeps a message to one line, so each problem is one line to read or grep.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
