package restorer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/sign"
)

// niceOf is field 19 of /proc/PID/stat text: the nice level.
func niceOf(t *testing.T, stat string) string {
	t.Helper()
	// The command name (field 2) is in parentheses and may hold spaces: count after it.
	i := strings.LastIndexByte(stat, ')')
	f := strings.Fields(stat[i+1:])
	if i < 0 || len(f) < 17 {
		t.Fatalf("not a /proc/PID/stat: %q", stat)
	}
	return f[16]
}

// TestStartNicedLeavesMfshaAlone: the child runs at the level asked, and nothing else of
// mfsha does: the process keeps its level, and a child started afterwards is not niced (a
// promotion's fold must not inherit a background fold's level).
func TestStartNicedLeavesMfshaAlone(t *testing.T) {
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	own := niceOf(t, string(self))
	if own == "10" {
		t.Skip("the test runs at nice 10 already: it could not tell")
	}
	record := filepath.Join(t.TempDir(), "stat")
	cmd := exec.Command("/bin/sh", "-c", waitNiced(10, record))
	if err := startNiced(cmd, 10); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(record); err != nil || niceOf(t, string(b)) != "10" {
		t.Fatalf("child started at nice 10 runs at %q (%v)", b, err)
	}
	if b, err := os.ReadFile("/proc/self/stat"); err != nil || niceOf(t, string(b)) != own {
		t.Fatalf("mfsha went from nice %s to %q (%v)", own, b, err)
	}
	b, err := exec.Command("/bin/cat", "/proc/self/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := niceOf(t, string(b)); got != own {
		t.Fatalf("a child started without a level runs at nice %s, not mfsha's %s", got, own)
	}
}

// waitNiced is a shell script that waits (up to 5 s) until its own nice level is nice, then
// writes its /proc/PID/stat to record: the level is set just after the fork. It runs in a
// subshell ($$ is still the script's process), which leaves the script's arguments alone.
func waitNiced(nice int, record string) string {
	return fmt.Sprintf(`(i=0; while [ $i -lt 500 ]; do set -- $(sed 's/.*) //' /proc/$$/stat); [ "${17}" = %d ] && break; i=$((i+1)); sleep 0.01; done; cat /proc/$$/stat > %s)`, nice, record)
}

// TestFoldRunsNiced: the fold's mfsmaster (the real one, behind a wrapper that records its
// nice level and execs it) runs at the level asked, and still folds: the rest of the test's
// lines reach the metadata.
func TestFoldRunsNiced(t *testing.T) {
	mfstest.RequireMooseFS(t)
	work, data, u := foldInput(t, history(1, 50))
	record := filepath.Join(t.TempDir(), "stat")
	wrapper := filepath.Join(t.TempDir(), "mfsmaster")
	script := fmt.Sprintf("#!/bin/sh\n%s\nexec %s \"$@\"\n", waitNiced(DefaultFoldNiceLevel, record), mfstest.Mfsmaster(t).Path)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := fold(context.Background(), wrapper, work, data, u, DefaultFoldNiceLevel); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if got := niceOf(t, string(b)); got != fmt.Sprint(DefaultFoldNiceLevel) {
		t.Fatalf("the fold's mfsmaster ran at nice %s; want %d", got, DefaultFoldNiceLevel)
	}
}

// TestFoldNiceLevelIsChecked: a level outside 0-19 is refused, naming the setting.
func TestFoldNiceLevelIsChecked(t *testing.T) {
	key, _ := sign.Generate()
	v, err := sign.NewVerifier(sign.NewSigner(key).Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []int{-1, 20} {
		c := DefaultStandbyConfig()
		c.Dir, c.Verifier, c.FoldNiceLevel = t.TempDir(), v, level
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("FOLD_NICE_LEVEL = %d", level)) {
			t.Errorf("FOLD_NICE_LEVEL = %d: %v; want refused, naming the setting", level, err)
		}
	}
}
