// Command mfsha-bench measures mfsha against baselines measured in the same run and writes the
// numbers, as ratios, to a Markdown file the README cites. It asserts nothing: `make test`
// checks behaviour, this measures it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/internal/moosefs"

	"github.com/mfsha/mfsha/shipper"
)

// benchMooseFS is the release measured (-moosefs): the figures of BENCHMARKS.md are Debian's
// 3.0.117.
var benchMooseFS = moosefs.Installed[0]

func main() {
	out := flag.String("out", "BENCHMARKS.md", "Markdown `file` to write the results to")
	lines := flag.Int("lines", 1000000, "changelog `lines` for the throughput run")
	rate := flag.Int("rate", 50000, "steady `lines/s` for the latency run")
	dur := flag.Duration("duration", 10*time.Second, "`length` of the latency run")
	only := flag.String("only", "", "run only this `section`: ship, shipcpu, snapshot, standby, restore, failover, faults, or scale (run only when named: make bench-scale)")
	bin := flag.String("mfsha", "bin/mfsha", "the mfsha `binary` the failover section runs in the lab")
	sizes := flag.String("failover-inodes", "1000,1000000", "failover section: metadata `sizes` (inodes), comma-separated")
	child := flag.Int64("snapshot-child", 0, "internal: upload a synthetic snapshot of this many `bytes` and print peak RSS")
	childDir := flag.String("snapshot-dir", "", "internal: directory for -snapshot-child")
	chartOnly := flag.Bool("chart-only", false, "measure nothing: redraw the failover chart from the table in -out")
	faultOnly := flag.String("fault", "", "faults section: only the faults whose name contains this `text`")
	scaleSizes := flag.String("scale-inodes", "1000000,10000000", "scale section: sizes of the realistic trees (inodes), comma-separated")
	scaleCache := flag.String("scale-cache", "/var/tmp/mfsha-scale", "scale section: `directory` keeping the trees between runs")
	scaleRate := flag.Int("scale-rate", 5000, "scale section: the master's changelog `lines/s` while the standby is watched")
	scaleWindow := flag.Duration("scale-window", 3*time.Minute, "scale section: how `long` the standby is watched")
	scaleFailover := flag.Bool("scale-failover", true, "scale section: also measure the client stall, mfsha against keepalived")
	scaleKeep := flag.Bool("scale-keep", false, "scale section: keep the work directory (labs, standby, promoted files) for a post-mortem")
	scaleSkip := flag.String("scale-skip", "", "scale section: `parts` not measured, comma-separated: standby (and the restore), snapshot, failover, keepalived")
	snapFile := flag.String("snapshot-file", "", "internal: upload this metadata `file` to -snapshot-dir's server and print peak RSS")
	snapGet := flag.Bool("snapshot-get", false, "internal: download the snapshot stored in -snapshot-dir's server and print peak RSS")
	release := flag.String("moosefs", benchMooseFS.Version.String(), "the MooseFS `release` the lab sections run (one of the installed: make deps)")
	flag.Parse()
	if d, err := moosefs.DistOf(*release); err != nil {
		fmt.Fprintln(os.Stderr, "mfsha-bench: -moosefs:", err)
		os.Exit(2)
	} else {
		benchMooseFS = d
	}
	if *chartOnly {
		rows, err := readFailoverTable(*out)
		if err == nil {
			err = writeChartFile(chartPath(*out), failoverChart(rows))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mfsha-bench:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s\n", chartPath(*out))
		return
	}
	if *snapFile != "" || *snapGet {
		var err error
		if *snapGet {
			err = snapshotGetChild(*childDir)
		} else {
			err = snapshotFileChild(*snapFile, *childDir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mfsha-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *child > 0 {
		if err := snapshotChild(*child, *childDir); err != nil {
			fmt.Fprintln(os.Stderr, "mfsha-bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	inodes := sizeList("-failover-inodes", *sizes)
	if *only == "scale" {
		c := scaleConfig{sizes: sizeList("-scale-inodes", *scaleSizes), cache: *scaleCache, rate: *scaleRate, window: *scaleWindow, failover: *scaleFailover, keep: *scaleKeep, skip: map[string]bool{}}
		for _, p := range strings.Split(*scaleSkip, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.skip[p] = true
			}
		}
		abs, err := filepath.Abs(*bin)
		if err == nil {
			err = runScale(ctx, *out, abs, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mfsha-bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *out, *only, *faultOnly, *bin, inodes, *lines, *rate, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "mfsha-bench:", err)
		os.Exit(1)
	}
}

// sizeList parses flag name's comma-separated inode counts, or exits.
func sizeList(name, list string) []int {
	var sizes []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "mfsha-bench: %s %q: want positive numbers\n", name, list)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func run(ctx context.Context, out, only, faultOnly, bin string, inodes []int, lines, rate int, dur time.Duration) error {
	want := func(section string) bool { return only == "" || only == section }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var report strings.Builder
	fmt.Fprintf(&report, "# mfsha benchmarks\n\nWritten by `make bench` on %s (%s). Each figure is compared with a baseline measured in the same run on the same machine.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())

	dir, err := os.MkdirTemp("", "mfsha-bench-")
	if err != nil {
		return err
	}
	if os.Getenv("MFSHA_BENCH_KEEP") != "" {
		fmt.Printf("work directory (kept: MFSHA_BENCH_KEEP): %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	if want("ship") {
		if err := shipSection(ctx, &report, dir, lines, rate, dur, log); err != nil {
			return err
		}
	}
	if want("snapshot") {
		if err := snapshotSection(ctx, &report, dir); err != nil {
			return err
		}
	}
	if want("standby") {
		if err := standbySection(ctx, &report, dir, rate, 20*time.Second, log); err != nil {
			return fmt.Errorf("standby: %w", err)
		}
	}
	if want("restore") {
		if err := restoreSection(ctx, &report, dir, 1000000, 1000000, log); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if want("shipcpu") {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		if err := shipCPUSection(ctx, &report, dir, abs); err != nil {
			return fmt.Errorf("shipper CPU: %w", err)
		}
	}
	if want("failover") {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		if err := failoverSection(ctx, &report, dir, abs, inodes, chartPath(out)); err != nil {
			return fmt.Errorf("failover: %w", err)
		}
	}
	if want("faults") {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		if err := faultsSection(ctx, &report, dir, abs, faultOnly); err != nil {
			return fmt.Errorf("faults: %w", err)
		}
	}
	fmt.Fprintf(&report, "\nThe workload: changelog lines shaped like a busy master's (CREATE, ACQUIRE, WRITE, LENGTH, UNLOCK, RELEASE, AMTIME, ATTR), see cmd/mfsha-bench/gen.go.\n")
	if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", out)
	return nil
}

// chartPath is where the failover chart of the report out goes: beside it.
func chartPath(out string) string {
	return strings.TrimSuffix(out, filepath.Ext(out)) + "-failover.svg"
}

func shipSection(ctx context.Context, w *strings.Builder, dir string, lines, rate int, dur time.Duration, log *slog.Logger) error {

	fmt.Printf("shipper throughput: %d lines, embedded JetStream with file storage...\n", lines)
	tp, err := benchThroughput(ctx, dir+"/tp", lines, log)
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	ratio := tp.rawBytes / tp.sentBytes
	fmt.Fprintf(w, "## Shipper (issue 2)\n\n")
	fmt.Fprintf(w, "| measure | mfsha | baseline | ratio | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| throughput, %d-line changelog to acknowledged | %.0f lines/s (%.2f s) | raw JetStream publish of the same %d precompressed batches: %.0f lines/s (%.2f s) | %.2f of the ceiling | >= 1,000,000 lines/s and >= 0.8 |\n",
		lines, tp.shipRate(), tp.shipSeconds, tp.batches, tp.ceilingRate(), tp.ceilingSeconds, tp.shipRate()/tp.ceilingRate())
	fmt.Fprintf(w, "| throughput against compress-and-publish of the same batches (no tailing, parsing or checks) | %.0f lines/s | %.0f lines/s (%.2f s) | %.2f | >= 0.8 |\n",
		tp.shipRate(), tp.compressRate(), tp.compressSeconds, tp.shipRate()/tp.compressRate())
	fmt.Fprintf(w, "| compression (zstd, whole batches) | %.1f MB -> %.1f MB | uncompressed | %.1fx | >= 5x |\n",
		tp.rawBytes/1e6, tp.sentBytes/1e6, ratio)
	fmt.Printf("  %.0f lines/s; raw publish ceiling %.0f lines/s (%.2f); compress+publish %.0f lines/s (%.2f); compression %.1fx\n",
		tp.shipRate(), tp.ceilingRate(), tp.shipRate()/tp.ceilingRate(), tp.compressRate(), tp.shipRate()/tp.compressRate(), ratio)

	for _, bd := range []time.Duration{shipper.DefaultConfig().BatchDelay, 10 * time.Millisecond} {
		fmt.Printf("shipper latency: %d lines/s for %v, BATCH_DELAY %v...\n", rate, dur, bd)
		lat, err := benchLatency(ctx, fmt.Sprintf("%s/lat-%v", dir, bd), rate, dur, bd, log)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		fmt.Fprintf(w, "| append to acknowledgement at a steady %d lines/s (%d lines), BATCH_DELAY = %v | p50 %v, p99 %v, max %v | - | - | p99 <= 20 ms (about BATCH_DELAY + 2 ms: see README, Light on the master's host) |\n",
			lat.rate, lat.samples, bd, lat.p50.Round(10*time.Microsecond), lat.p99.Round(10*time.Microsecond), lat.max.Round(10*time.Microsecond))
		fmt.Printf("  p50 %v p99 %v max %v\n", lat.p50, lat.p99, lat.max)
	}

	return nil
}

func machine() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := strings.Count(string(b), "processor\t:")
	return fmt.Sprintf("%d CPUs", n)
}
