package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/signtest"
)

// TestRestoreKilledLeavesNothingInOut: found by trying it, a restore killed with SIGKILL left
// its work directory, a whole snapshot's worth, inside --out. The work directory is beside
// --out now, and the next restore removes it. The kill lands deterministically during the
// fold: the mfsmaster given is the real one behind a gate that, for `-a restore`, says so and
// waits instead of running it.
func TestRestoreKilledLeavesNothingInOut(t *testing.T) {
	real := mfstest.Mfsmaster(t).Path
	js := jstest.Start(t)
	url := js.Conn().ConnectedUrl()
	const cluster = "killtest"
	nats := []string{"--nats", url, "--cluster", cluster}
	keys := signtest.New(t)
	reading := append([]string{"--trusted-keys", keys.Public}, nats...) // restore verifies
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "changelog.0.mfs"), []byte(lines(1, 100)), 0o644)
	addr := freePort(t)
	d := start(t, append([]string{"ship", "--no-snapshots", "--signing-key", keys.Private, "--data", dir, "--metrics", addr}, nats...)...)
	waitMetric(t, d, addr, "mfsha_ship_last_version", 100)
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(t)

	gateDir := t.TempDir()
	folding := filepath.Join(gateDir, "folding")
	gate := filepath.Join(gateDir, "mfsmaster")
	script := "#!/bin/sh\ncase \"$*\" in *\"-a restore\"*) touch " + folding + "; exec sleep 600;; esac\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(gate, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	cmd := exec.Command(binary, append([]string{"restore", "--version", "50", "--out", out, "--mfsmaster", gate}, reading...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(folding); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatal("the restore ended before its fold")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the fold did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // mfsha and the gate
	<-exited

	work := workDirs(t, parent)
	if len(work) != 1 {
		t.Fatalf("after SIGKILL: work directories beside --out %v; want the one left by the killed run", work)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("after SIGKILL, --out holds %v; want nothing", ents)
	}
	code, stdout, stderr := run(t, append([]string{"restore", "--version", "50", "--out", out, "--mfsmaster", real}, reading...)...)
	if code != 0 || !strings.Contains(stdout, "version 51") {
		t.Fatalf("the next restore: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if w := workDirs(t, parent); len(w) != 0 {
		t.Fatalf("the killed run's work directory is still there: %v", w)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 2 || ents[0].Name() != "metadata.mfs" || ents[1].Name() != "mfsha-restored.json" {
		t.Fatalf("--out holds %v; want metadata.mfs and the restore's mark alone", ents)
	}
}

func workDirs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".mfsha-work-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
