package shipper

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/changelog"
)

// TestLongLineStopsAfterWhatPrecedesIt: found by trying it, a line over 1 MB stopped the
// shipper in a restart loop and the valid lines before it were never shipped. Now the lines
// before it are shipped, then the shipper stops for good (ErrUnshippable) naming the file and
// the line, whether the line was there at start or arrives while shipping.
func TestLongLineStopsAfterWhatPrecedesIt(t *testing.T) {
	long := fmt.Sprintf("101: 1700000000|SETXATTR(1,user.x,%s,0)\n", strings.Repeat("a", changelog.MaxLineBytes+10))
	for _, atStart := range []bool{true, false} {
		t.Run(fmt.Sprintf("at start %v", atStart), func(t *testing.T) {
			n := startNATS(t)
			dir := masterDir(t)
			if atStart {
				writeFile(t, logPath(dir, 1), lines(1, 60))
				writeFile(t, logPath(dir, 0), lines(61, 100)+long+lines(102, 110))
			} else {
				writeFile(t, logPath(dir, 0), lines(1, 50))
			}
			cfg := DefaultConfig() // 1 MB batches: the line alone does not fit
			cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Poll = dir, KindMaster, testCluster, 20e6
			r := startConfigured(t, n, cfg)
			if !atStart {
				waitShipped(t, r, 1, 50)
				appendFile(t, logPath(dir, 0), lines(51, 100)+long+lines(102, 110))
			}
			err := r.waitErr(t)
			if !errors.Is(err, ErrUnshippable) || !errors.Is(err, changelog.ErrLineTooLong) ||
				!strings.Contains(err.Error(), logPath(dir, 0)+" line ") {
				t.Fatalf("got %v; want ErrUnshippable, line too long, naming %s and the line", err, logPath(dir, 0))
			}
			wantLine := "line 41"
			if !atStart {
				wantLine = "line 101"
			}
			if !strings.Contains(err.Error(), wantLine+":") {
				t.Fatalf("got %v; want it to name %s", err, wantLine)
			}
			if p := r.sh.Shipped(); p.Next != 101 {
				t.Fatalf("shipped up to %+v; want every line before the long one (next 101)", p)
			}
			checkStream(t, n, map[uint64]string{1: lines(1, 100)})
		})
	}
}
