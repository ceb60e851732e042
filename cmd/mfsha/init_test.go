package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInitThenSecuredCluster runs what an operator runs: `mfsha init`, then `mfsha nats`,
// `mfsha ship`, `mfsha status` and `mfsha restore` each with the configuration file init
// wrote for it (only the addresses overridden, to free loopback ports), over TLS to a real
// socket. A client without credentials is refused; init prints no secret and does not
// replace its files.
func TestInitThenSecuredCluster(t *testing.T) {
	sec := filepath.Join(t.TempDir(), "secrets")
	code, stdout, stderr := run(t, "init", "--cluster", "e2e", "--out", sec, "--nats-hosts", "s1=127.0.0.1")
	if code != exitOK {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	for _, secret := range []string{"node.nk", "signing.key", "ca.key"} {
		b, err := os.ReadFile(filepath.Join(sec, secret))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stdout+stderr, strings.TrimSpace(string(b))) {
			t.Fatalf("init printed the content of %s", secret)
		}
	}
	if !strings.Contains(stdout, "ship.cfg") || !strings.Contains(stdout, "nats-s1.cfg") {
		t.Fatalf("init does not list the files it wrote:\n%s", stdout)
	}
	if code, _, stderr := run(t, "init", "--cluster", "e2e", "--out", sec, "--nats-hosts", "s1=127.0.0.1"); code != exitError || !strings.Contains(stderr, "--force") {
		t.Fatalf("init over existing files: exit %d, want 1 naming --force:\n%s", code, stderr)
	}
	if code, _, stderr := run(t, "init", "--out", sec, "--nats-hosts", "s1=127.0.0.1"); code != exitUsage || !strings.Contains(stderr, "--cluster") {
		t.Fatalf("init without --cluster: exit %d, want 2:\n%s", code, stderr)
	}

	// Secure by default: without the secrets `mfsha nats` refuses its default 0.0.0.0.
	if code, _, stderr := run(t, "nats", "--state", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "NATS_USERS") || !strings.Contains(stderr, "mfsha init") {
		t.Fatalf("nats without secrets: exit %d, want 2 naming NATS_USERS and mfsha init:\n%s", code, stderr)
	}

	client := freePort(t)
	url := "nats://" + client
	srv := start(t, "nats", "--config", filepath.Join(sec, "nats-s1.cfg"), "--nats-listen", client, "--state", t.TempDir())
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", client); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mfsha nats does not listen on %s; log:\n%s", client, srv.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "changelog.0.mfs"), []byte(lines(1, 100)), 0o644)
	addr := freePort(t)
	ship := start(t, "ship", "--config", filepath.Join(sec, "ship.cfg"), "--nats", url, "--data", data, "--state", t.TempDir(),
		"--metrics", addr, "--no-snapshots")
	waitMetric(t, ship, addr, "mfsha_ship_last_version", 100)

	code, stdout, stderr = run(t, "status", "--config", filepath.Join(sec, "status.cfg"), "--nats", url)
	if code != exitOK || !regexpLine(stdout, `^1\s+-\s+1\s+\S+\s+100\s`) {
		t.Fatalf("status as reader: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "restore", "--config", filepath.Join(sec, "restore.cfg"), "--nats", url, "--list")
	if code != exitOK || !regexpLine(stdout, `^1\s+-\s+1\s+\S+\s+100\s`) {
		t.Fatalf("restore --list as reader: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The same server without credentials: refused.
	code, _, stderr = run(t, "status", "--cluster", "e2e", "--nats", url, "--nats-tls-ca", filepath.Join(sec, "ca.crt"))
	if code != exitError || !strings.Contains(stderr, "Authorization Violation") {
		t.Fatalf("status without credentials: exit %d, want 1 with an authorization violation:\n%s", code, stderr)
	}

	ship.cmd.Process.Signal(syscall.SIGTERM)
	if code := ship.wait(t); code != exitOK {
		t.Fatalf("ship: exit %d; log:\n%s", code, ship.stderr)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := srv.wait(t); code != exitOK {
		t.Fatalf("nats: exit %d; log:\n%s", code, srv.stderr)
	}
}
