package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// standbySection: while the master's changelog grows at rate lines/s, how far the standby's
// local copy trails the newest shipped version: every 20 ms, the age of the oldest line the
// stream has acknowledged but the standby has not yet on its disk (0 when it has them all).
func standbySection(ctx context.Context, w *strings.Builder, dir string, rate int, d time.Duration, log *slog.Logger) error {
	fmt.Printf("standby lag: %d lines/s for %v...\n", rate, d)
	data := filepath.Join(dir, "standby-master")
	const ts = 1764000000
	first, err := lab.MakeMetadata(ctx, benchMooseFS.Path("mfsmaster"), data, 4242, 100000, ts)
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(data, "metadata.mfs"), filepath.Join(data, "metadata.mfs.back")); err != nil {
		return err
	}
	logPath := filepath.Join(data, "changelog.0.mfs")
	if err := writeCreates(logPath, first, first, ts); err != nil {
		return err
	}
	e, err := newEnv(filepath.Join(dir, "standby-nats"))
	if err != nil {
		return err
	}
	defer e.stop()
	store, err := snapshot.Open(ctx, e.js, "standby", 1)
	if err != nil {
		return err
	}
	store = store.WithSigner(e.signer)
	var mu sync.Mutex
	type ack struct {
		last uint64
		at   time.Time
	}
	var acks []ack
	scfg := shipper.DefaultConfig()
	scfg.DataDir, scfg.Kind, scfg.Cluster, scfg.Snapshots, scfg.Retention = data, shipper.KindMaster, "standby", store, 0
	scfg.SnapshotPoll, scfg.Signer = 100*time.Millisecond, e.signer
	scfg.OnAck = func(b stream.BatchInfo) {
		mu.Lock()
		acks = append(acks, ack{b.LastVersion, time.Now()})
		mu.Unlock()
	}
	sh, err := shipper.New(scfg, e.js, log, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sh.Run(ctx)
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := store.Get(ctx, stream.SnapshotName(1, first)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the snapshot was not uploaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sbcfg := restorer.DefaultStandbyConfig()
	sbcfg.Cluster, sbcfg.Dir, sbcfg.Verifier = "standby", filepath.Join(dir, "standby"), e.verifier
	sbcfg.Mfsmaster = moosefs.Mfsmaster{Path: benchMooseFS.Path("mfsmaster"), Version: benchMooseFS.Version}
	sb, err := restorer.NewStandby(sbcfg, e.js, store, log, nil)
	if err != nil {
		return err
	}
	go sb.Run(ctx)
	for deadline := time.Now().Add(time.Minute); sb.Materialized().Version == 0; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the standby did not materialize the snapshot")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The master: lines appended every millisecond at the given rate.
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var lags []time.Duration
	sample := time.NewTicker(20 * time.Millisecond)
	defer sample.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	next := first + 1
	end := time.Now().Add(d)
	var buf []byte
	t := strconv.FormatInt(ts+1, 10)
	for time.Now().Before(end) {
		select {
		case <-tick.C:
			buf = buf[:0]
			for i := 0; i < rate/1000; i++ {
				n := strconv.FormatUint(next, 10)
				buf = append(buf, n+": "+t+"|CREATE(1,f"+n+",1,420,18,0,0,0):"+n+"\n"...)
				next++
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
		case <-sample.C:
			local := sb.Local()
			mu.Lock()
			lag := time.Duration(0)
			// The oldest acknowledged batch holding a line the standby lacks.
			i := sort.Search(len(acks), func(i int) bool { return acks[i].last > local })
			if i < len(acks) {
				lag = time.Since(acks[i].at)
			}
			mu.Unlock()
			lags = append(lags, lag)
		}
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	p50, p99, max := lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
	mat := sb.Materialized().Version
	fmt.Fprintf(w, "\n## Standby (issue 4)\n\n| measure | mfsha | baseline | target |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| standby's local copy behind the newest shipped version, master changing %d lines/s for %v on a 100,000-inode file system (%d samples every 20 ms) | p50 %v, p99 %v, max %v | - | p99 <= 1 s |\n",
		rate, d, len(lags), p50.Round(time.Millisecond), p99.Round(time.Millisecond), max.Round(time.Millisecond))
	fmt.Fprintf(w, "| lines still to fold at the end (a promotion replays them) | %d | - | about 100,000 at most |\n", next-mat)
	fmt.Printf("  lag p50 %v p99 %v max %v; %d lines left to fold at the end\n", p50, p99, max, next-mat)
	return nil
}
