package main

import (
	"runtime/debug"

	"github.com/spf13/cobra"
)

// release is the version of a release archive, set by make krew (-ldflags -X); go install
// records the module version in the build info instead.
var release string

// buildVersion is the module version, the commit and the Go version the binary was
// built from, as the Go toolchain recorded them.
func buildVersion() (version, commit, goVersion string) {
	version, commit, goVersion = "unknown", "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	goVersion = bi.GoVersion
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	if release != "" {
		version = release
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && commit != "unknown" {
		commit += "-dirty"
	}
	return
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			version, commit, goVersion := buildVersion()
			a.printf("kubectl-promgate %s (commit %s, %s)\n", version, commit, goVersion)
		},
	}
}
