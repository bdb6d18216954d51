package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/cmd/internal/analyzecmd"
)

// app is one invocation of the plugin: kubectl's standard flags, where it writes, and the
// clock and client, which tests replace.
type app struct {
	flags          *genericclioptions.ConfigFlags
	stdout, stderr io.Writer
	// connect builds the client from the flags.
	connect func() (client.WithWatch, error)
	now     func() time.Time
	// terminal says stdout is a terminal: colour (unless --no-color) and redraws in place.
	terminal bool
	noColor  bool
}

func newApp(stdout, stderr *os.File) *app {
	a := &app{
		flags:    genericclioptions.NewConfigFlags(true),
		stdout:   stdout,
		stderr:   stderr,
		now:      time.Now,
		terminal: term.IsTerminal(int(stdout.Fd())),
	}
	a.connect = a.connectFlags
	return a
}

// scheme knows the kinds the plugin reads and writes.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, gatewayv1.Install} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("building the scheme: %v", err))
		}
	}
	return s
}

func (a *app) connectFlags() (client.WithWatch, error) {
	cfg, err := a.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-promgate"
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// connectIn connects and says the namespace a verb on one Rollout works in.
func (a *app) connectIn() (client.WithWatch, string, error) {
	c, err := a.connect()
	if err != nil {
		return nil, "", err
	}
	ns, err := a.namespace()
	if err != nil {
		return nil, "", err
	}
	return c, ns, nil
}

// namespace is -n, or the kubeconfig context's namespace.
func (a *app) namespace() (string, error) {
	if a.flags.Namespace != nil && *a.flags.Namespace != "" {
		return *a.flags.Namespace, nil
	}
	ns, _, err := a.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// color says whether output gets ANSI colours.
func (a *app) color() bool { return a.terminal && !a.noColor }

func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, args...)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-promgate",
		Short: "Drive promgate releases: read Rollouts, wait for them, approve, abort, retry, jump, undo",
		Long: `kubectl promgate reads and drives promgate Rollouts. Each command that changes a
Rollout is the documented status patch or spec change, checked against the Rollout's state
first, and says what it did; a command that does not fit the state changes nothing.`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl promgate"},
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	a.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().BoolVar(&a.noColor, "no-color", false, "no colour in the output (there is none when stdout is not a terminal)")
	_ = root.RegisterFlagCompletionFunc("namespace", a.completeNamespaces)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(
		a.getCommand(), a.listCommand(), a.statusCommand(),
		a.approveCommand(), a.promoteCommand(), a.abortCommand(), a.retryCommand(), a.jumpCommand(),
		a.pauseCommand(), a.resumeCommand(), a.undoCommand(), a.setCommand(),
		a.lintCommand(), a.analyzeCommand(), a.versionCommand(),
	)
	return root
}

// rolloutArg is a command's first argument, a Rollout's name, completed from the cluster.
func (a *app) rolloutArg(cmd *cobra.Command, n int) {
	cmd.Args = cobra.ExactArgs(n)
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.completeRollouts(cmd.Context(), prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRollouts lists the names of the namespace's Rollouts that start with prefix;
// completion says nothing about an error, so a shell never prints one mid-line.
func (a *app) completeRollouts(ctx context.Context, prefix string) []cobra.Completion {
	c, ns, err := a.connectIn()
	if err != nil {
		return nil
	}
	var list v1alpha1.RolloutList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var names []cobra.Completion
	for _, ro := range list.Items {
		if strings.HasPrefix(ro.Name, prefix) {
			names = append(names, cobra.CompletionWithDesc(ro.Name, string(ro.Status.Phase)))
		}
	}
	sort.Strings(names)
	return names
}

func (a *app) completeNamespaces(cmd *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, err := a.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var list corev1.NamespaceList
	if err := c.List(cmd.Context(), &list); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []cobra.Completion
	for _, ns := range list.Items {
		if strings.HasPrefix(ns.Name, prefix) {
			names = append(names, ns.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// lintCommand and analyzeCommand hand their arguments to promgate's own lint and analyze,
// flags included, so both binaries take the same flags and say the same things.
func (a *app) lintCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "lint [-f] FILE...",
		Short:              "Validate AnalysisTemplate files with no cluster (as promgate lint)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exitCode(analyzecmd.Lint("kubectl promgate", args, a.stdout, a.stderr))
		},
	}
}

func (a *app) analyzeCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "analyze -f FILE [--template NAME] [--prometheus URL] [--arg NAME=VALUE]...",
		Short:              "Run a template against a Prometheus with no cluster; the exit code is the verdict (as promgate analyze)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := analyzecmd.InterruptContext()
			defer stop()
			return exitCode(analyzecmd.Analyze(ctx, "kubectl promgate", args, a.stdout, a.stderr))
		},
	}
}

// exitCode ends a command that printed its own messages with code.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}
