package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadPrefersTheLinkedVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v9.9.9"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-02T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := read("0.1.0", func() (*debug.BuildInfo, bool) { return bi, true })
	want := Info{Version: "0.1.0", Commit: "abc123", Modified: true, CommitAt: "2026-12-02T10:00:00Z", GoVersion: "go1.99"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if s := got.String(); s != "mfsha 0.1.0 (commit abc123 with uncommitted changes, 2026-12-02T10:00:00Z, go1.99)" {
		t.Fatalf("String() = %q", s)
	}
}

func TestReadFallsBack(t *testing.T) {
	mod := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.2.0"}}
	if got := read("", func() (*debug.BuildInfo, bool) { return mod, true }); got.Version != "v0.2.0" {
		t.Fatalf("module version: got %q, want v0.2.0", got.Version)
	}
	dev := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"}}
	got := read("", func() (*debug.BuildInfo, bool) { return dev, true })
	if got.Version != "devel" || got.Commit != "" {
		t.Fatalf("devel build: got %+v", got)
	}
	if !strings.Contains(got.String(), "unknown commit") {
		t.Fatalf("String() = %q: want it to say the commit is unknown", got.String())
	}
	none := read("", func() (*debug.BuildInfo, bool) { return nil, false })
	if none.Version != "devel" || none.GoVersion == "" {
		t.Fatalf("no build info: got %+v", none)
	}
}

// The test binary itself carries build information: Get must report the toolchain's Go.
func TestGet(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.GoVersion, "go") {
		t.Fatalf("GoVersion = %q", i.GoVersion)
	}
	if Writer() != "mfsha "+i.Version {
		t.Fatalf("Writer() = %q", Writer())
	}
}
