// Command promgate is the promgate controller and its command-line tools:
//
//	promgate controller              run the manager: the AnalysisRun, AnalysisTemplate,
//	                                 ClusterAnalysisTemplate and Rollout controllers, and
//	                                 the Alertmanager webhook receiver when enabled
//	promgate analyze -f FILE ...     run a template against a Prometheus, no cluster needed
//	promgate lint -f FILE...         validate templates
//	promgate convert -f FILE...      print Argo Rollouts and Flagger objects as promgate's
//	promgate version                 print the version, commit and Go version
package main

import (
	"fmt"
	"os"

	"github.com/promgate/promgate/cmd/internal/analyzecmd"
)

// Exit codes of analyze follow the verdict; lint, the controller and usage errors share them.
const (
	exitSuccessful   = analyzecmd.ExitSuccessful
	exitFailed       = analyzecmd.ExitFailed
	exitInconclusive = analyzecmd.ExitInconclusive
	exitError        = analyzecmd.ExitError
	exitInvalidInput = analyzecmd.ExitInvalidInput
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(exitInvalidInput)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "controller":
		os.Exit(runController(args))
	case "analyze":
		os.Exit(runAnalyze(args))
	case "lint":
		os.Exit(lint(args, os.Stdout, os.Stderr))
	case "convert":
		os.Exit(runConvert(args, os.Stdin, os.Stdout, os.Stderr))
	case "version":
		os.Exit(runVersion(args))
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "promgate: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(exitInvalidInput)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: promgate <command> [flags]

commands:
  controller   run the controller manager: the AnalysisRun, AnalysisTemplate,
               ClusterAnalysisTemplate and Rollout controllers, the Alertmanager webhook
               receiver if enabled, leader election, /metrics, /healthz and /readyz
  analyze      run an AnalysisTemplate against a Prometheus with no cluster; the exit code
               is the verdict: 0 Successful, 1 Failed, 2 Inconclusive, 3 Error, 4 invalid input
  lint         validate AnalysisTemplate files (multi-document YAML); non-zero on problems
  convert      print Argo Rollouts and Flagger objects as promgate's, with a comment on
               everything that was not carried over and why
  version      print the version, commit and Go version of this build

Run "promgate <command> -h" for the command's flags.
`)
}
