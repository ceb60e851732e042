package restorer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/mlproto"
	"github.com/mfsha/mfsha/internal/sign"
)

// RECEIVE replaces the local metalogger: both set, or a RECEIVE that is no host:port, is
// refused naming the settings.
func TestStandbyConfigReceive(t *testing.T) {
	key, _ := sign.Generate()
	v, err := sign.NewVerifier(sign.NewSigner(key).Public())
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultStandbyConfig()
	c.Dir, c.Verifier = t.TempDir(), v
	c.Receive = "10.0.0.100:9419"
	if err := c.Validate(); err != nil {
		t.Fatalf("RECEIVE alone: %v", err)
	}
	c.MetaloggerDir = "/var/lib/mfs"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "RECEIVE = 10.0.0.100:9419 and METALOGGER_PATH = /var/lib/mfs") {
		t.Errorf("both: %v", err)
	}
	c.MetaloggerDir, c.Receive = "", "10.0.0.100"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "RECEIVE = 10.0.0.100") {
		t.Errorf("no port: %v", err)
	}
}

// The spool writes each line as it comes to changelog_ml.0.mfs, whole, and a rotation moves
// the live file aside and starts a new one that the metalogger reader follows from its start.
func TestReceiveSpoolFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ml")
	sp, err := newReceiveSpool("10.0.0.100:9419", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.rotate(); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(history(5, 8), "\n")[:4]
	for i, l := range lines[:2] {
		if err := sp.deliver(t.Context(), mlproto.Line{Version: uint64(5 + i), Text: []byte(l)}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "changelog_ml.0.mfs")); string(b) != history(5, 6) {
		t.Fatalf("live file: %q", b)
	}
	sp.size = spoolRotateAt // the next line rotates first
	for i, l := range lines[2:] {
		if err := sp.deliver(t.Context(), mlproto.Line{Version: uint64(7 + i), Text: []byte(l)}); err != nil {
			t.Fatal(err)
		}
	}
	sp.close()
	old, _ := os.ReadFile(filepath.Join(dir, "changelog_ml.1.mfs"))
	live, _ := os.ReadFile(filepath.Join(dir, "changelog_ml.0.mfs"))
	if string(old) != history(5, 6) || string(live) != history(7, 8) {
		t.Fatalf("after rotation: old %q, live %q", old, live)
	}
}
