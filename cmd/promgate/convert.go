package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/promgate/promgate/convert"
)

const convertUsage = `usage: promgate convert [--provider NAME] [-f] FILE...

Reads Argo Rollouts objects (AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun,
Rollout) and Flagger objects (Canary, MetricTemplate) and prints promgate's: the same
analysis kinds, a Rollout (with a Deployment when an Argo Rollout carried the pod template),
and AnalysisTemplates for a Canary's metrics. Before each object a comment names every
field that was not carried over and why. Objects of other kinds are printed as they are.
"-" reads standard input.

exit code: 0 converted (notes or not), 4 a file cannot be read or is not YAML

flags:
`

// runConvert converts files to stdout.
func runConvert(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, convertUsage)
		fs.PrintDefaults()
	}
	var files []string
	fs.Func("f", "input `FILE` (repeatable); files may also be given as arguments", func(s string) error {
		files = append(files, s)
		return nil
	})
	provider := fs.String("provider", "istio", "Flagger `provider` of Canaries that name none (Flagger's -mesh-provider): istio, linkerd, nginx, contour, gatewayapi or kubernetes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitSuccessful
		}
		return exitInvalidInput
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "promgate convert: no file given (-f FILE, or - for standard input)")
		return exitInvalidInput
	}
	var all []convert.Object
	for _, f := range files {
		objs, err := convertFile(f, stdin, convert.Options{Provider: *provider})
		if err != nil {
			fmt.Fprintf(stderr, "promgate convert: %s: %v\n", f, err)
			return exitInvalidInput
		}
		all = append(all, objs...)
	}
	if err := convert.Write(stdout, all); err != nil {
		fmt.Fprintf(stderr, "promgate convert: %v\n", err)
		return exitError
	}
	return exitSuccessful
}

func convertFile(name string, stdin io.Reader, opts convert.Options) ([]convert.Object, error) {
	if name == "-" {
		return convert.Convert(stdin, opts)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return convert.Convert(f, opts)
}
