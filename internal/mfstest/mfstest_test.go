package mfstest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/metafile"
)

func TestMakeMetadata(t *testing.T) {
	const inodes = 50
	path, version := MakeMetadata(t, t.TempDir(), 99, inodes)
	h, err := metafile.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (metafile.Header{Version: inodes + 2, MetaID: 99}); h != want || version != want.Version {
		t.Fatalf("header %+v, returned version %d; want %+v", h, version, want)
	}
	dump, err := Path("mfsmetadump")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(dump, path).CombinedOutput()
	if err != nil {
		t.Fatalf("mfsmetadump %s: %v\n%s", path, err, out)
	}
	names := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "EDGE|p:         1|") {
			names[l[strings.LastIndex(l, "|n:")+3:]] = true
		}
	}
	if len(names) != inodes || !names["f2"] || !names["f51"] {
		t.Fatalf("the root holds %d names (f2: %v, f51: %v); want f2..f51", len(names), names["f2"], names["f51"])
	}
}
