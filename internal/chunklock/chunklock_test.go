package chunklock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
)

// lines are real MooseFS 3.0.117 lines (from the lab), versions 10-22: chunk 2 written and
// released, chunk 3 written and rolled back, chunk 4 truncated and deleted, chunk 5 written
// twice without UNLOCK, chunk 6 written long ago.
const lines = `10: 1796222286|WRITE(3,0,1,0):2
11: 1796222286|LENGTH(3,6,0)
12: 1796222286|UNLOCK(2)
13: 1796222287|WRITE(7,0,1,0):3
14: 1796222287|ROLLBACK(7,0,0,3)
15: 1796222288|TRUNC(8,0):4
16: 1796222289|UNLOCK(4)
17: 1796222289|CHUNKDEL(4,2)
18: 1796222000|WRITE(9,0,1,0):6
19: 1796222290|CREATE(1,f,1,420,18,0,0,0):10
20: 1796222290|WRITE(10,0,1,0):5
21: 1796222291|LENGTH(10,1000,0)
22: 1796222291|WRITE(10,0,0,0):5`

func track(t *testing.T, text string) *Tracker {
	t.Helper()
	var tr Tracker
	for _, l := range strings.Split(text, "\n") {
		if err := tr.Add([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	return &tr
}

func TestHeld(t *testing.T) {
	tr := track(t, lines)
	now := time.Unix(1796222291+60, 0)
	got := tr.Held(now)
	if len(got) != 1 || got[0] != (Lock{Chunk: 5, Inode: 10, Version: 22, Time: 1796222291, Op: "WRITE"}) {
		t.Fatalf("held at +60 s: %+v; want only chunk 5, locked again by line 22", got)
	}
	// Chunk 6's lock (line 18, TS 1796222000) expired at 1796222120: nothing to release.
	if got := tr.Held(time.Unix(1796222291+121, 0)); len(got) != 0 {
		t.Fatalf("held 121 s after the last lock: %+v; want none", got)
	}
	if got := tr.Held(time.Unix(1796222291+120, 0)); len(got) != 1 {
		t.Fatalf("held exactly 120 s after: %+v; want chunk 5 (mfsmaster: lockedto >= now)", got)
	}
	if tr.Last() != 22 {
		t.Fatalf("last %d, want 22", tr.Last())
	}
}

func TestAppendUnlocks(t *testing.T) {
	got := string(AppendUnlocks(nil, []Lock{{Chunk: 5}, {Chunk: 11}}, 23, time.Unix(1796222300, 0)))
	want := "23: 1796222300|UNLOCK(5)\n24: 1796222300|UNLOCK(11)\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if err := changelog.Check([]byte(l)); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
}

func TestAddRefuses(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"gap", "10: 1|UNLOCK(2)\n12: 1|UNLOCK(3)", "line 12 after 10"},
		{"malformed", "10: 1|WRITE(3,0,1,0:2", `changelog line "10: 1|WRITE(3,0,1,0:2": WRITE: ')' expected`},
		{"write without result", "10: 1|WRITE(3,0,1,0)", `changelog line "10: 1|WRITE(3,0,1,0)": WRITE: ':' expected`},
		{"rollback too short", "10: 1|ROLLBACK(3,0,0)", "ROLLBACK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			var err error
			for _, l := range strings.Split(tc.text, "\n") {
				if err = tr.Add([]byte(l)); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestReleaseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "changelog.1.mfs")
	if err := os.WriteFile(path, []byte(lines+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var tr Tracker
	now := time.Unix(1796222300, 0)
	locks, err := tr.ReleaseFile(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 || locks[0].Chunk != 5 {
		t.Fatalf("released %+v, want chunk 5", locks)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := lines + "\n23: 1796222300|UNLOCK(5)\n"; string(b) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", b, want)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640 kept", st.Mode(), err)
	}
	// The file's lines are all known now: nothing more to release.
	var again Tracker
	if locks, err := again.ReleaseFile(path, now); err != nil || len(locks) != 0 {
		t.Fatalf("second release: %+v, %v; want none", locks, err)
	}

	if err := os.WriteFile(path, []byte("10: 1796222286|WRITE(3,0,1,0):2\n11: 179"), 0o640); err != nil {
		t.Fatal(err)
	}
	var partial Tracker
	if _, err := partial.ReleaseFile(path, now); !errors.Is(err, changelog.ErrPartialLine) {
		t.Fatalf("partial last line: %v, want ErrPartialLine", err)
	}
}

func TestReleaseRefusesAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "changelog.1.mfs")
	if err := os.WriteFile(path, []byte(lines+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr Tracker
	if err := tr.ScanFile(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(lines+"\n23: 1796222291|UNLOCK(5)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Release(path, time.Unix(1796222300, 0)); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "ends with version 23, not 22") {
		t.Fatalf("release into a file changed since the scan: %v; want ErrChanged naming the versions", err)
	}
}

// ReleaseAt: after lines the tracker did not read (a metadata's locks only), into an empty or
// a missing file, and refused when the file does not end right before the versions given.
func TestReleaseAt(t *testing.T) {
	now := time.Unix(1796222300, 0)
	dir := t.TempDir()
	seeded := func() *Tracker {
		var tr Tracker
		tr.Seed([]Lock{{Chunk: 7, Time: 1796222290, Op: "metadata"}, {Chunk: 8, Time: 1796222000, Op: "metadata"}})
		return &tr
	}
	p := filepath.Join(dir, "changelog.0.mfs")
	if err := os.WriteFile(p, []byte("40: 1796222290|IDLE()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := seeded().ReleaseAt(p, 42, now); !errors.Is(err, ErrChanged) {
		t.Fatalf("file ends at 40, lines from 42: %v; want ErrChanged", err)
	}
	tr := seeded()
	locks, err := tr.ReleaseAt(p, 41, now)
	if err != nil || len(locks) != 1 || locks[0].Chunk != 7 || tr.Last() != 41 {
		t.Fatalf("after line 40: %+v, %v, last %d; want chunk 7 (8 expired), last 41", locks, err, tr.Last())
	}
	if b, _ := os.ReadFile(p); string(b) != "40: 1796222290|IDLE()\n41: 1796222300|UNLOCK(7)\n" {
		t.Fatalf("file: %q", b)
	}
	if locks, err := tr.ReleaseAt(p, 42, now); err != nil || len(locks) != 0 {
		t.Fatalf("again: %+v, %v; want nothing", locks, err)
	}
	empty := filepath.Join(dir, "changelog.1.mfs")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "changelog.2.mfs")
	for _, p := range []string{empty, missing} {
		if _, err := seeded().ReleaseAt(p, 100, now); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "100: 1796222300|UNLOCK(7)\n" {
			t.Fatalf("%s: %q", p, b)
		}
	}
	if st, _ := os.Stat(empty); st.Mode().Perm() != 0o600 {
		t.Errorf("mode of the rewritten file: %v", st.Mode())
	}
}
