package restorer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestStandbyDoesNotFoldIdleStretches: lines that are all IDLE() (an idle MooseFS 4.x master
// writes one every 30 s) are shipped and copied but cause no fold when FOLD_EVERY passes,
// also after a restart; the next real change folds them all in with it. Both releases replay
// IDLE, so this runs on either. The rounds are driven by hand: the test decides when
// FOLD_EVERY has passed instead of waiting on the loops' timing.
func TestStandbyDoesNotFoldIdleStretches(t *testing.T) {
	js, store, dir := shipped(t) // lines 1..3001 and a snapshot of version 1002
	ctx := context.Background()
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.FoldEvery, cfg.Poll = cluster, t.TempDir(), 10000, time.Millisecond, time.Millisecond
	cfg.Mfsmaster, cfg.Verifier = mfstest.Mfsmaster(t), testVerifier
	open := func() *Standby {
		sb, err := NewStandby(cfg, js, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.loadPending(); err != nil {
			t.Fatal(err)
		}
		return sb
	}
	// follow copies lines until the local copy holds line last (the shipper publishes them).
	follow := func(sb *Standby, last uint64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for sb.Local() != last {
			if err := sb.follow(ctx); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("local copy at %d, want %d", sb.Local(), last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// round lets FOLD_EVERY pass, then runs one fold round as the loop would.
	round := func(sb *Standby) Position {
		t.Helper()
		time.Sleep(2 * cfg.FoldEvery)
		if err := sb.fold(ctx, false); err != nil {
			t.Fatal(err)
		}
		return sb.Materialized()
	}
	idle := func(from, to int) string {
		var b strings.Builder
		for v := from; v <= to; v++ {
			fmt.Fprintf(&b, "%d: %d|IDLE()\n", v, 1700000100+v)
		}
		return b.String()
	}

	sb := open()
	if err := sb.follow(ctx); err != nil { // learns the timeline
		t.Fatal(err)
	}
	if got := round(sb); got.Version != 3002 { // from the snapshot and the stream's lines
		t.Fatalf("first round: materialized %+v, want 3002", got)
	}

	appendTo(t, filepath.Join(dir, "changelog.0.mfs"), idle(3002, 3101))
	follow(sb, 3101)
	for range 3 {
		if got := round(sb); got.Version != 3002 {
			t.Fatalf("100 IDLE lines folded: materialized %+v, want 3002", got)
		}
	}
	tls, err := stream.Timelines(ctx, js, cluster)
	if err != nil || len(tls) != 1 || tls[0].LastVersion != 3101 {
		t.Fatalf("stream: %+v, %v; want the IDLE lines shipped up to 3101", tls, err)
	}

	sb = open() // a restart finds the IDLE lines in pending.mfs: still nothing to fold
	if sb.Local() != 3101 {
		t.Fatalf("after restart: local copy at %d, want 3101", sb.Local())
	}
	if err := sb.follow(ctx); err != nil {
		t.Fatal(err)
	}
	if got := round(sb); got.Version != 3002 {
		t.Fatalf("after restart: materialized %+v, want 3002", got)
	}

	// f3102 gets the next free inode, 3002: the IDLE lines took versions, not inodes.
	appendTo(t, filepath.Join(dir, "changelog.0.mfs"), "3102: 1700003300|CREATE(1,f3102,1,420,18,0,0,0):3002\n"+idle(3103, 3110))
	follow(sb, 3110)
	if got := round(sb); got.Version != 3111 {
		t.Fatalf("a change among IDLE lines: materialized %+v, want 3111 (everything folded)", got)
	}
	if names := files(t, filepath.Join(cfg.Dir, "metadata.mfs")); !names["f3102"] || !names["f3001"] {
		t.Error("materialized metadata lacks f3102 or f3001")
	}
}
