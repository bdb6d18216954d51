package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version and commit are stamped by the image build (-ldflags "-X main.version=...");
// a plain go build leaves them empty and the build info says what it knows.
var (
	version string
	commit  string
)

// buildVersion is what a binary knows of its own build.
type buildVersion struct {
	Version, Commit, GoVersion, Platform string
}

func currentVersion() buildVersion {
	v := buildVersion{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.GoVersion = bi.GoVersion
		if v.Version == "" && bi.Main.Version != "" {
			// "(devel)" for a build from a checkout, a module version for go install.
			v.Version = bi.Main.Version
		}
		if v.Commit == "" {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" && modified == "true" {
				rev += "-dirty"
			}
			v.Commit = rev
		}
	}
	if v.Version == "" {
		v.Version = "unknown"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func (v buildVersion) print(w io.Writer) {
	fmt.Fprintf(w, "promgate %s\ncommit %s\n%s %s\n", v.Version, v.Commit, v.GoVersion, v.Platform)
}

func runVersion(args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "promgate version: takes no arguments, got %q\n", args)
		return exitInvalidInput
	}
	currentVersion().print(os.Stdout)
	return exitSuccessful
}
