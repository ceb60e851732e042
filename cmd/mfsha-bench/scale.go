package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
)

// scaleConfig is what `make bench-scale` measures: issue 13's figures per size of metadata.
type scaleConfig struct {
	sizes    []int           // inodes of each realistic tree (lab.MakeTree)
	cache    string          // trees kept here between runs, per release and size
	rate     int             // the master's changelog during the standby's window, lines/s
	window   time.Duration   // how long the standby is watched
	failover bool            // also the client stall, mfsha against keepalived (two labs per size)
	keep     bool            // keep the work directory (labs, standby, promoted files) for a post-mortem
	skip     map[string]bool // parts not measured: standby (and with it restore), snapshot, failover, keepalived
}

// treeMade is what making a tree cost, kept beside it in the cache (tree.json).
type treeMade struct {
	Stats   lab.TreeStats
	Folded  lab.Folded
	MadeNow bool `json:"-"`
}

// scaleTree returns the cached tree of inodes for the measured release, making it first if
// it is not there.
func scaleTree(ctx context.Context, cache string, inodes int) (string, treeMade, error) {
	dir := filepath.Join(cache, fmt.Sprintf("%s-%d", benchMooseFS.Version, inodes))
	meta, info := filepath.Join(dir, "metadata.mfs"), filepath.Join(dir, "tree.json")
	var made treeMade
	if b, err := os.ReadFile(info); err == nil {
		if err := json.Unmarshal(b, &made); err != nil {
			return "", made, fmt.Errorf("%s: %w", info, err)
		}
		if _, err := os.Stat(meta); err == nil {
			return meta, made, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", made, err
	}
	fmt.Printf("  making a %d-inode tree with %s (kept in %s)...\n", inodes, benchMooseFS.Path("mfsmaster"), dir)
	st, f, err := lab.MakeTree(ctx, benchMooseFS.Path("mfsmaster"), dir, lab.TreeSpec{Inodes: inodes, Seed: 1, MetaID: 4242, Time: 1700000000})
	if err != nil {
		return "", made, fmt.Errorf("tree of %d inodes: %w", inodes, err)
	}
	made = treeMade{Stats: st, Folded: f, MadeNow: true}
	b, _ := json.MarshalIndent(made, "", "  ")
	if err := os.WriteFile(info, b, 0o644); err != nil {
		return "", made, err
	}
	return meta, made, nil
}

// scaleRow is one size's figures.
type scaleRow struct {
	inodes       int
	made         treeMade
	metaBytes    int64
	floor        time.Duration // mfsmaster's load of the tree until it serves
	floorRSS     int64
	sb           standbyScale
	restore      time.Duration // mfsha restore from the stream
	restoreLocal time.Duration // mfsmaster -a restore of the same files on local disk
	up, down     snapRate
	ka, mf       felt // client stall; zero when not measured
	window       time.Duration
}

// runScale measures every size and writes the report to out.
func runScale(ctx context.Context, out, bin string, c scaleConfig, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "mfsha-bench-scale-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Printf("work directory (kept): %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var rows []scaleRow
	var lost []error
	for _, n := range c.sizes {
		r, err := scaleOne(ctx, filepath.Join(dir, fmt.Sprint(n)), bin, c, n, log)
		if err != nil {
			return fmt.Errorf("scale, %d inodes: %w", n, err)
		}
		for _, f := range []struct {
			who string
			f   felt
		}{{"keepalived", r.ka}, {"mfsha", r.mf}} {
			if f.f.readBack != nil {
				lost = append(lost, fmt.Errorf("%s at %d inodes: %w", f.who, n, f.f.readBack))
			}
		}
		rows = append(rows, r)
		// Written after every size: a long run's first sizes survive a later failure.
		if err := os.WriteFile(out, []byte(scaleReport(c, rows)), 0o644); err != nil {
			return err
		}
		if !c.keep {
			if err := os.RemoveAll(filepath.Join(dir, fmt.Sprint(n))); err != nil {
				return err
			}
		}
	}
	fmt.Printf("wrote %s\n", out)
	if len(lost) > 0 {
		return fmt.Errorf("acknowledged files not read back: %w", errors.Join(lost...))
	}
	return nil
}

// scaleOne measures one size, printing each figure as it comes.
func scaleOne(ctx context.Context, dir, bin string, c scaleConfig, n int, log *slog.Logger) (scaleRow, error) {
	r := scaleRow{inodes: n}
	fmt.Printf("scale: %d inodes (%s)\n", n, benchMooseFS)
	meta, made, err := scaleTree(ctx, c.cache, n)
	if err != nil {
		return r, err
	}
	r.made = made
	if st, err := os.Stat(meta); err == nil {
		r.metaBytes = st.Size()
	}
	if r.floor, r.floorRSS, err = lab.LoadCost(ctx, benchMooseFS.Path("mfsmaster"), meta); err != nil {
		return r, fmt.Errorf("load floor: %w", err)
	}
	fmt.Printf("  tree: %d MB of metadata; mfsmaster loads it in %.1f s (RSS %d MB)\n", r.metaBytes>>20, r.floor.Seconds(), r.floorRSS>>20)

	if c.skip["standby"] {
		return scaleRest(ctx, dir, bin, c, meta, r)
	}
	fmt.Printf("  standby: %d lines/s for %v...\n", c.rate, c.window)
	r.sb, err = standbyAtScale(ctx, filepath.Join(dir, "standby"), bin, meta, n, c.rate, c.window, log)
	if r.sb.env != nil {
		defer r.sb.env.stop()
	}
	if err != nil {
		return r, fmt.Errorf("standby: %w", err)
	}
	fmt.Printf("  standby: CPU %.1f%% of a core, %d folds (mean %.1f s, mfsmaster %d MB), pending p50 %.0f max %.0f lines, promotion %.2f s (%.2f s to hand over, %d lines) against a load of %.2f s\n",
		r.sb.cpu, r.sb.folds, r.sb.foldMean, r.sb.foldRSS>>20, r.sb.pendingP50, r.sb.pendingMax, r.sb.promote.Seconds(), r.sb.handOver.Seconds(), r.sb.promoteLines, r.sb.promoteFloor.Seconds())

	fmt.Printf("  restore of the tree + %d lines...\n", r.sb.last+1-r.sb.snapVersion)
	r.restoreLocal, r.restore, err = restoreVsLocal(ctx, r.sb.env, r.sb.cluster, filepath.Join(dir, "restore"), r.sb.src, r.sb.snapVersion, r.sb.last, false, log)
	if err != nil {
		return r, fmt.Errorf("restore: %w", err)
	}
	fmt.Printf("  restore: from the stream %.1f s, local mfsmaster -a restore %.1f s\n", r.restore.Seconds(), r.restoreLocal.Seconds())
	r.sb.env.stop()
	r.sb.env = nil
	if err := removeUnlessKept(c, filepath.Join(dir, "standby")); err != nil {
		return r, err
	}
	if err := removeUnlessKept(c, filepath.Join(dir, "restore")); err != nil {
		return r, err
	}
	return scaleRest(ctx, dir, bin, c, meta, r)
}

// scaleRest measures the snapshots and the client stall of one size.
func scaleRest(ctx context.Context, dir, bin string, c scaleConfig, meta string, r scaleRow) (scaleRow, error) {
	var err error
	if !c.skip["snapshot"] {
		if r.up, r.down, err = snapshotRates(ctx, filepath.Join(dir, "snap"), meta); err != nil {
			return r, err
		}
		fmt.Printf("  snapshot: upload %.0f MB/s (RSS %d MB), download %.0f MB/s (RSS %d MB)\n", r.up.mbps(), r.up.hwm>>20, r.down.mbps(), r.down.hwm>>20)
		if err := removeUnlessKept(c, filepath.Join(dir, "snap")); err != nil {
			return r, err
		}
	}
	if !c.failover || c.skip["failover"] {
		return r, nil
	}
	// The writer watches long enough for keepalived's two starts of mfsmaster on this metadata.
	r.window = failoverWindow + 3*r.floor
	sd := seedSpec{inodes: r.inodes, tree: meta, window: r.window}
	if !c.skip["keepalived"] {
		fmt.Printf("  client stall, keepalived (window %v)...\n", r.window.Round(time.Second))
		if r.ka, err = keepalivedFault(ctx, filepath.Join(dir, "ka"), sd, killSpec); err != nil {
			return r, fmt.Errorf("keepalived: %w", err)
		}
		fmt.Printf("  keepalived: %s\n", r.ka)
	}
	fmt.Printf("  client stall, mfsha...\n")
	if r.mf, err = mfshaFault(ctx, filepath.Join(dir, "mf"), bin, sd, killSpec, nil); err != nil {
		return r, fmt.Errorf("mfsha: %w", err)
	}
	fmt.Printf("  mfsha: %s\n", r.mf)
	return r, nil
}

// removeUnlessKept removes path, a measurement's files, unless c keeps them: at 10M inodes
// and more they fill a disk.
func removeUnlessKept(c scaleConfig, path string) error {
	if c.keep {
		return nil
	}
	return os.RemoveAll(path)
}

// scaleReport is BENCHMARKS-scale.md for the rows measured so far.
func scaleReport(c scaleConfig, rows []scaleRow) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# mfsha at scale (issue 13)\n\nWritten by `make bench-scale` on %s (%s), MooseFS %s. Each size is a realistic tree made by the real mfsmaster "+
		"(`deploy/lab/tree.go`: directories up to 6 deep, three huge ones, files with chunks, symlinks, hard links, xattrs), kept in %s between runs. "+
		"Every figure is measured in this run; the baselines are MooseFS's own tools on the same files.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(), benchMooseFS.Version, c.cache)

	fmt.Fprintf(&w, "## The tree and its load floor\n\n| inodes | made of | metadata.mfs | mfsmaster load until serving (the floor) | its RSS |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&w, "| %s | %s | %d MB | %.2f s | %d MB |\n", count(r.inodes), r.made.Stats, r.metaBytes>>20, r.floor.Seconds(), r.floorRSS>>20)
	}

	fmt.Fprintf(&w, "\n## Standby\n\nA real `mfsha standby` process with its defaults (`FOLD_REPLAY` 1s, `FOLD_CPU_PERCENT` 50, `FOLD_LINES` 50,000, `FOLD_EVERY` 30s) follows the stream "+
		"while the master's changelog grows by %d lines/s (creates, lengths, times, accesses) for %v. CPU is the standby's and its folds' mfsmaster's "+
		"(/proc/PID/stat, children included), over the window; pending lines are sampled every second from its metrics. "+
		"The promotion is the failover's: the last lines copied, the files handed over, `mfsmaster -a` started until its client port accepts; "+
		"its floor is mfsmaster's plain load of the same metadata with every line folded. Target (issue 13): the promotion within 1 s of the floor, "+
		"the standby's CPU at most half a core at 10M inodes and 5,000 lines/s.\n\n", c.rate, c.window)
	fmt.Fprintf(&w, "| inodes | snapshot stored by the shipper | first materialization | CPU | standby RSS | folds in the window (mean, mfsmaster RSS) | lines waiting: p50, max | copy lag, max | promotion (lines replayed) | floor | promotion over the floor |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		s := r.sb
		if s.window == 0 { // not measured (-scale-skip standby)
			continue
		}
		fmt.Fprintf(&w, "| %s | %.1f s | %.1f s | %.0f%% of a core | %d MB | %d (%.1f s, %d MB) | %.0f, %.0f | %.0f lines | %.2f s (%s) | %.2f s | %+.2f s |\n",
			count(r.inodes), s.snapUpload.Seconds(), s.firstMaterialized.Seconds(), s.cpu, s.hwm>>20, s.folds, s.foldMean, s.foldRSS>>20,
			s.pendingP50, s.pendingMax, s.copyLagMax, s.promote.Seconds(), count(int(s.promoteLines)), s.promoteFloor.Seconds(), (s.promote - s.promoteFloor).Seconds())
	}

	fmt.Fprintf(&w, "\n## Restore and snapshots\n\nThe restore rebuilds the tree plus the standby window's lines from the stream (download, verify, lines, fold, checks) against "+
		"`mfsmaster -a restore` of the same files on local disk. Snapshots are uploaded to an embedded JetStream server and downloaded (verified, synced) "+
		"each in a child process of its own; RSS is that whole process's peak (VmHWM), the server included.\n\n")
	fmt.Fprintf(&w, "| inodes | mfsha restore | mfsmaster -a restore | ratio | upload | upload RSS | stored | download | download RSS |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.restore == 0 && r.up.seconds == 0 { // neither measured (-scale-skip standby,snapshot)
			continue
		}
		fmt.Fprintf(&w, "| %s | %.1f s | %.1f s | %.2fx | %.0f MB/s (%.1f s) | %d MB | %d MB | %.0f MB/s (%.1f s) | %d MB |\n",
			count(r.inodes), r.restore.Seconds(), r.restoreLocal.Seconds(), r.restore.Seconds()/r.restoreLocal.Seconds(),
			r.up.mbps(), r.up.seconds, r.up.hwm>>20, r.up.stored>>20, r.down.mbps(), r.down.seconds, r.down.hwm>>20)
	}

	if c.failover {
		fmt.Fprintf(&w, "\n## Client stall at scale: kill -9 of mfsmaster\n\nThe failover section's lab, writer and measure (BENCHMARKS.md), on the tree: "+
			"the writer runs %.0f s before the kill and 30 s plus three load floors after it (keepalived's notify script starts mfsmaster twice). "+
			"Blocked time is the sum of the writer's gaps over %d ms in that window; every acknowledged file is read back afterwards.\n\n", writerLead.Seconds(), ha.StallThreshold.Milliseconds())
		fmt.Fprintf(&w, "| inodes | window | floor | keepalived: longest gap, blocked, outages | mfsha: longest gap, blocked, outages | blocked, mfsha/keepalived | files acknowledged (keepalived, mfsha) |\n|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			if r.window == 0 { // not measured (-scale-skip failover)
				continue
			}
			k, m := r.ka.row(), r.mf.row()
			fmt.Fprintf(&w, "| %s | %.0f s | %.2f s | %.2f s, %.2f s, %d | %.2f s, %.2f s, %d | %.2f | %d, %d |\n",
				count(r.inodes), r.window.Seconds(), r.floor.Seconds(), k.longest, k.blocked, k.outages, m.longest, m.blocked, m.outages, m.blocked/k.blocked, k.files, m.files)
		}
	}
	return w.String()
}

// count prints n as 20k, 10M or 1.5M.
func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000000 && n%100000 == 0:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
