package failover

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/restorer"
)

// writeMeta writes a minimal complete metadata file of version v (header, EOF marker).
func writeMeta(t *testing.T, path string, v uint64) {
	t.Helper()
	b := []byte("MFSM 2.0")
	b = binary.BigEndian.AppendUint64(b, v)
	b = binary.BigEndian.AppendUint64(b, 77)
	b = append(b, "[MFS EOF MARKER]"...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRestoredMark(t *testing.T) {
	dir := t.TempDir()
	n := &Node{cfg: Config{Cluster: "prod"}, d: Deps{Master: &Master{dataPath: dir}}}
	if _, ok, err := n.restoredLocal(); ok || err != nil {
		t.Fatalf("no mark: ok %v, %v; want neither", ok, err)
	}
	writeMeta(t, filepath.Join(dir, "metadata.mfs"), 84)
	mark := restorer.Restored{Cluster: "prod", Timeline: 1, Version: 84, LastTime: 1795591800, At: time.Now()}

	for _, c := range []struct {
		name string
		edit func(r *restorer.Restored)
		want string
	}{
		{"another cluster", func(r *restorer.Restored) { r.Cluster = "test" }, `restored for cluster "test", this node is in "prod"`},
		{"served since", func(r *restorer.Restored) { r.Version = 80 }, "names a restore of version 80, but " + filepath.Join(dir, "metadata.mfs") + " is at version 84"},
	} {
		r := mark
		c.edit(&r)
		if err := restorer.WriteRestored(dir, r); err != nil {
			t.Fatal(err)
		}
		_, ok, err := n.restoredLocal()
		if ok || err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), restorer.RestoredFile) {
			t.Errorf("%s: ok %v, %v; want an error naming the file and %q", c.name, ok, err, c.want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, restorer.RestoredFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := n.restoredLocal(); ok || err == nil || !strings.Contains(err.Error(), restorer.RestoredFile) {
		t.Errorf("a damaged mark: ok %v, %v; want an error naming the file", ok, err)
	}

	if err := restorer.WriteRestored(dir, mark); err != nil {
		t.Fatal(err)
	}
	why, ok, err := n.restoredLocal()
	if !ok || err != nil || !strings.Contains(why, "version 84 (timeline 1, its state at 2026-11-25T07:30:00Z") {
		t.Fatalf("a valid mark: %q, %v, %v", why, ok, err)
	}

	// The restore's first line: an IDLE of the metadata's version; a changelog already there
	// is left alone.
	now := time.Unix(1800000000, 0)
	if err := startTimeline(dir, now); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "changelog.0.mfs"))
	if string(b) != "84: 1800000000|IDLE()\n" {
		t.Fatalf("changelog.0.mfs: %q", b)
	}
	if err := startTimeline(dir, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(filepath.Join(dir, "changelog.0.mfs")); string(b2) != string(b) {
		t.Fatalf("changelog.0.mfs rewritten: %q", b2)
	}
	n.forgetRestored()
	if _, err := os.Stat(filepath.Join(dir, restorer.RestoredFile)); !os.IsNotExist(err) {
		t.Fatalf("the mark after forgetRestored: %v", err)
	}
}
