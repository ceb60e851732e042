package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mfsha/mfsha/internal/stream"
)

// shipCPU is the CPU a real `mfsha ship` process (bin) takes to ship a master's changelog
// growing at rate lines/s, one write per line as mfsmaster writes it, against a NATS server in
// another process (this one): the master's host pays for the shipper only.
type shipCPU struct {
	rate    int
	seconds float64 // the measured window (after a warm-up)
	percent float64 // of one core, user and system, over the window
	lines   uint64  // lines shipped in all (every one is checked to be in the stream)
}

// benchShipCPU runs bin ship with extra flags and measures its CPU over d after warm.
func benchShipCPU(ctx context.Context, dir, bin string, rate int, warm, d time.Duration, extra ...string) (shipCPU, error) {
	res := shipCPU{rate: rate, seconds: d.Seconds()}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return res, err
	}
	f, err := os.OpenFile(filepath.Join(data, "changelog.0.mfs"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return res, err
	}
	defer f.Close()
	w := newWorkload(1)
	if err := w.write(f, 1); err != nil { // the shipper needs a first line to start from
		return res, err
	}
	e, err := newEnv(dir)
	if err != nil {
		return res, err
	}
	defer e.stop()
	const cluster = "cpu"
	args := append([]string{"ship", "--data", data, "--kind", "master", "--nats", e.nc.ConnectedUrl(), "--cluster", cluster,
		"--signing-key", e.keyPath, "--no-snapshots", "--state", filepath.Join(dir, "state"), "--metrics", ""}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	if _, err := waitShipped(ctx, e, cluster, 1, 10*time.Second, exited); err != nil {
		return res, fmt.Errorf("first line: %w\n%s", err, stderr.String())
	}

	perTick := max(rate/1000, 1)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var written uint64 = 1
	start := time.Now()
	var cpu0 float64
	var t0 time.Time
	for measuring := false; ; {
		<-tick.C
		// One write per line: mfsmaster flushes every line it logs.
		for i := 0; i < perTick; i++ {
			w.buf = append(w.line(w.buf[:0]), '\n')
			if _, err := f.Write(w.buf); err != nil {
				return res, err
			}
		}
		written += uint64(perTick)
		now := time.Now()
		if !measuring && now.Sub(start) >= warm {
			if cpu0, err = procCPUSeconds(cmd.Process.Pid); err != nil {
				return res, err
			}
			t0, measuring = now, true
		}
		if measuring && now.Sub(t0) >= d {
			cpu1, err := procCPUSeconds(cmd.Process.Pid)
			if err != nil {
				return res, err
			}
			res.seconds = now.Sub(t0).Seconds()
			res.percent = 100 * (cpu1 - cpu0) / res.seconds
			break
		}
		select {
		case err := <-exited:
			return res, fmt.Errorf("%s ship exited: %v\n%s", bin, err, stderr.String())
		default:
		}
	}
	last, err := waitShipped(ctx, e, cluster, written, 30*time.Second, exited)
	if err != nil {
		return res, fmt.Errorf("all %d lines: %w\n%s", written, err, stderr.String())
	}
	res.lines = last
	return res, nil
}

// waitShipped waits until the stream's newest line is version v or later and returns it.
func waitShipped(ctx context.Context, e *env, cluster string, v uint64, within time.Duration, exited <-chan error) (uint64, error) {
	deadline := time.Now().Add(within)
	for {
		tls, err := stream.Timelines(ctx, e.js, cluster)
		if err == nil && len(tls) > 0 && tls[len(tls)-1].LastVersion >= v {
			return tls[len(tls)-1].LastVersion, nil
		}
		if err != nil && !errors.Is(err, stream.ErrNoStream) {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("version %d not in the stream after %v (%v)", v, within, err)
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the shipper exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// procCPUSeconds is the user and system CPU time of process pid so far (/proc/PID/stat).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // fields 14 and 15 of proc(5)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux ABI Go runs on.
const clockTicks = 100

// shipCPUSection measures the shipper's CPU with its defaults against the same binary
// reading on every file event (BATCH_DELAY = 0, what mfsha did before), in the same run.
func shipCPUSection(ctx context.Context, w *strings.Builder, dir, bin string) error {
	const rate, warm, d = 10000, 3 * time.Second, 20 * time.Second
	fmt.Printf("shipper CPU: %s ship at %d lines/s, NATS in another process; baseline BATCH_DELAY = 0...\n", bin, rate)
	base, err := benchShipCPU(ctx, filepath.Join(dir, "shipcpu-base"), bin, rate, warm, d, "--batch-delay", "0")
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	fmt.Printf("  baseline: %.1f%% of a core over %.0f s, %d lines shipped\n", base.percent, base.seconds, base.lines)
	r, err := benchShipCPU(ctx, filepath.Join(dir, "shipcpu"), bin, rate, warm, d)
	if err != nil {
		return err
	}
	fmt.Printf("  defaults: %.1f%% of a core over %.0f s, %d lines shipped\n", r.percent, r.seconds, r.lines)
	fmt.Fprintf(w, "## Shipper CPU on the master's host (issue 13)\n\n")
	fmt.Fprintf(w, "`mfsha ship` as its own process, NATS in another one (the bench's), a master's changelog growing by %d lines/s written one line per write(2) as mfsmaster does, %.0f s measured after %.0f s of warm-up; every line is checked to be in the stream. CPU is user plus system time from /proc/PID/stat.\n\n", rate, d.Seconds(), warm.Seconds())
	fmt.Fprintf(w, "| measure | mfsha (BATCH_DELAY = 100ms, the default) | baseline: the same binary, BATCH_DELAY = 0 (a read on every file event) | ratio | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| CPU of `mfsha ship` at %d lines/s | %.1f%% of a core | %.1f%% of a core | %.2fx | <= 3%% |\n\n", rate, r.percent, base.percent, r.percent/base.percent)
	return nil
}
