package restorer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/stream"
)

func TestMetaloggerMerge(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "changelog_ml.0.mfs")
	hashOf := func(v int) uint64 { return stream.LineHash([]byte(strings.TrimSuffix(history(v, v), "\n"))) }
	m := &metaloggerSource{dir: dir}
	var out bytes.Buffer

	// Another history: line 10 differs from ours, so nothing is merged.
	os.WriteFile(live, []byte(history(5, 9)+"10: 1800000000|CREATE(1,other,1,420,18,0,0,0):10\n"+history(11, 12)), 0o644)
	if n, _, _, err := m.merge(11, hashOf(10), &out); err != nil || n != 0 {
		t.Fatalf("another history: merged %d lines (%v), want none", n, err)
	}

	// Our history, with a partial last line: the whole lines after ours, not the partial one.
	m = &metaloggerSource{dir: dir}
	out.Reset()
	os.WriteFile(live, []byte(history(5, 14)+"15: 1700000000|CRE"), 0o644)
	n, last, hash, err := m.merge(11, hashOf(10), &out)
	if err != nil || n != 4 || last != 14 || hash != hashOf(14) || out.String() != history(11, 14) {
		t.Fatalf("got %d lines up to %d (%v): %q", n, last, err, out.String())
	}
	f, _ := os.OpenFile(live, os.O_APPEND|os.O_WRONLY, 0o644)
	f.WriteString(strings.TrimPrefix(history(15, 16), "15: 1700000000|CRE"))
	f.Close()
	out.Reset()
	if n, last, _, err := m.merge(15, hashOf(14), &out); err != nil || n != 2 || last != 16 || out.String() != history(15, 16) {
		t.Fatalf("after the rest of line 15: %d lines up to %d (%v): %q", n, last, err, out.String())
	}

	// The hourly rotation: a new live file is read from its start.
	os.Rename(live, filepath.Join(dir, "changelog_ml.1.mfs"))
	os.WriteFile(live, []byte(history(16, 18)), 0o644)
	out.Reset()
	if n, last, _, err := m.merge(17, hashOf(16), &out); err != nil || n != 2 || last != 18 {
		t.Fatalf("after rotation: %d lines up to %d (%v)", n, last, err)
	}

	// A damaged line (a NUL byte) is never merged: the lines before it are, then an error
	// names the file and where the line starts.
	os.WriteFile(live, []byte(history(16, 20)+"21: 1700000000|CREATE(1,f\x0021,1,420,18,0,0,0):21\n"+history(22, 23)), 0o644)
	m = &metaloggerSource{dir: dir}
	out.Reset()
	n, last, _, err = m.merge(19, hashOf(18), &out)
	at := len(history(16, 20))
	if n != 2 || last != 20 || out.String() != history(19, 20) || err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("changelog_ml.0.mfs: the line at byte %d: NUL byte", at)) {
		t.Fatalf("damaged line: %d lines up to %d (%v): %q", n, last, err, out.String())
	}
}
