// Package buildinfo tells which mfsha this is: the version given at link time, and the
// commit and Go version recorded by the Go toolchain in the binary.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// version is set at link time by the Makefile:
//
//	go build -ldflags "-X github.com/mfsha/mfsha/internal/buildinfo.version=0.1.0"
//
// A plain `go build` leaves it empty: Get then reports the module version, or "devel".
// commit is set the same way, for builds where the toolchain records no VCS information
// (-buildvcs=false, or a tree the go command cannot read as a repository).
var version, commit string

// Info is what the binary knows about its own build.
type Info struct {
	Version   string `json:"version"`             // e.g. "0.1.0", or "devel"
	Commit    string `json:"commit,omitempty"`    // VCS revision, when the build recorded it
	Modified  bool   `json:"modified,omitempty"`  // built from a tree with uncommitted changes
	CommitAt  string `json:"commit_at,omitempty"` // the commit's time (RFC 3339), when recorded
	GoVersion string `json:"go"`
}

var (
	once sync.Once
	info Info
)

// Get returns the build's information; it is computed once.
func Get() Info {
	once.Do(func() {
		info = read(version, debug.ReadBuildInfo)
		if info.Commit == "" {
			info.Commit = commit
		}
	})
	return info
}

// read builds Info from the link-time version and the toolchain's build information.
func read(linked string, readBuild func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: linked, GoVersion: runtime.Version()}
	bi, ok := readBuild()
	if ok {
		i.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.time":
				i.CommitAt = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// Writer names this program and version, e.g. "mfsha 0.1.0": the Mfsha-Writer header of every
// batch it publishes, and the first line of every log.
func Writer() string { return "mfsha " + Get().Version }

// String is the line `mfsha version` prints, e.g.
// "mfsha 0.1.0 (commit 91cc18f2a3b4, 2026-12-02T14:00:00Z, go1.26.8)".
func (i Info) String() string {
	commit := "unknown commit"
	if i.Commit != "" {
		commit = "commit " + i.Commit
		if i.Modified {
			commit += " with uncommitted changes"
		}
		if i.CommitAt != "" {
			commit += ", " + i.CommitAt
		}
	}
	return fmt.Sprintf("mfsha %s (%s, %s)", i.Version, commit, i.GoVersion)
}
