package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// standbyScale is what a real `mfsha standby` process did while the master's changelog grew
// at rate lines/s on a tree of inodes, and what its promotion cost.
type standbyScale struct {
	rate              int
	window            time.Duration
	snapUpload        time.Duration // the shipper's first snapshot of the tree: start until stored
	firstMaterialized time.Duration // the standby process's start until its first metadata (download and check)
	cpu               float64       // percent of one core over the window: the standby and its folds' mfsmaster
	hwm               int64         // the standby process's peak RSS (its folds are other processes)
	foldRSS           int64         // the largest fold's mfsmaster peak RSS
	folds             int           // folds ended in the window
	foldMean          float64       // their mean duration, seconds
	pendingP50        float64       // lines shipped but not folded (what a promotion replays), sampled every second
	pendingMax        float64
	copyLagMax        float64 // lines in the stream not yet on the standby's disk, at worst
	ageMax            float64 // lag_seconds at worst: age of the newest line while lines wait

	promote      time.Duration // Finish + HandOver + mfsmaster -a until its client port accepts
	handOver     time.Duration // of which Finish and HandOver (the last lines copied, the files moved)
	promoteLines uint64        // lines the promoted master replayed
	promoteFloor time.Duration // mfsmaster's plain load of the same metadata, all lines folded

	// For the restore that follows, on the same stream.
	env         *env
	cluster     string
	src         string // the master's data: metadata.mfs.back (the tree) and changelog.0.mfs
	snapVersion uint64
	last        uint64
}

// standbyAtScale ships the tree at meta (as a master's metadata.mfs.back) and a changelog
// growing at rate lines/s for window, with a real `mfsha standby` process (bin, defaults but
// for its paths) following the stream. Then it promotes the standby's files as a failover does
// and times the master's start against its plain load of the same metadata. The caller stops
// the returned env.
func standbyAtScale(ctx context.Context, dir, bin, meta string, inodes, rate int, window time.Duration, log *slog.Logger) (r standbyScale, err error) {
	r.rate, r.window, r.cluster = rate, window, "scale"
	r.src = filepath.Join(dir, "master")
	if err := os.MkdirAll(r.src, 0o755); err != nil {
		return r, err
	}
	h, err := metafile.Check(meta)
	if err != nil {
		return r, err
	}
	r.snapVersion = h.Version
	if err := lab.LinkOrCopy(meta, filepath.Join(r.src, "metadata.mfs.back")); err != nil {
		return r, err
	}
	logf, err := os.OpenFile(filepath.Join(r.src, "changelog.0.mfs"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return r, err
	}
	defer logf.Close()
	// The tree's objects are inodes 2..inodes+1. The shipper starts from a line.
	wl := &scaleWorkload{next: h.Version, inode: uint64(inodes) + 1}
	if _, err := logf.Write(wl.lines(nil, 1)); err != nil {
		return r, err
	}

	if r.env, err = newEnv(filepath.Join(dir, "nats")); err != nil {
		return r, err
	}
	store, err := snapshot.Open(ctx, r.env.js, r.cluster, 1)
	if err != nil {
		return r, err
	}
	store = store.WithSigner(r.env.signer)
	scfg := shipper.DefaultConfig()
	scfg.DataDir, scfg.Kind, scfg.Cluster, scfg.Snapshots, scfg.Retention = r.src, shipper.KindMaster, r.cluster, store, 0
	scfg.SnapshotPoll, scfg.Signer = 100*time.Millisecond, r.env.signer
	sh, err := shipper.New(scfg, r.env.js, log, nil)
	if err != nil {
		return r, err
	}
	sctx, stopShipper := context.WithCancel(ctx)
	shipped := make(chan error, 1)
	go func() { shipped <- sh.Run(sctx) }()
	defer func() {
		stopShipper()
		<-shipped
	}()
	t0 := time.Now()
	if err := pollUntil(ctx, 10*time.Minute, func() bool {
		_, err := store.Get(ctx, stream.SnapshotName(1, h.Version))
		return err == nil
	}); err != nil {
		return r, fmt.Errorf("the tree's snapshot was not stored: %w", err)
	}
	r.snapUpload = time.Since(t0)

	// The standby, as its own process, as on a metalogger host.
	port, err := freeLocalPort()
	if err != nil {
		return r, err
	}
	metrics := "127.0.0.1:" + strconv.Itoa(port)
	sbLog, err := os.Create(filepath.Join(dir, "standby.log"))
	if err != nil {
		return r, err
	}
	defer sbLog.Close()
	sbDir := filepath.Join(dir, "standby")
	cmd := exec.CommandContext(ctx, bin, "standby", "--data", sbDir, "--nats", r.env.nc.ConnectedUrl(), "--cluster", r.cluster,
		"--trusted-keys", r.env.pubPath, "--metrics", metrics, "--mfsmaster", benchMooseFS.Path("mfsmaster"))
	cmd.Stdout, cmd.Stderr = sbLog, sbLog
	t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s standby: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	running := true
	defer func() {
		if running {
			cmd.Process.Kill()
			<-exited
		}
	}()
	scrape := func() (map[string]float64, error) { return scrapeMetrics(ctx, "http://"+metrics+"/metrics") }
	if err := pollUntil(ctx, 15*time.Minute, func() bool {
		m, err := scrape()
		return err == nil && m["mfsha_standby_materialized_version"] > 0
	}); err != nil {
		return r, fmt.Errorf("the standby never materialized the tree (see %s): %w", sbLog.Name(), err)
	}
	r.firstMaterialized = time.Since(t0)

	// The window: the changelog grows at rate lines/s, one write every 10 ms.
	m0, err := scrape()
	if err != nil {
		return r, err
	}
	cpu0, err := procTreeCPUSeconds(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sample := time.NewTicker(time.Second)
	defer sample.Stop()
	var pending []float64
	var buf []byte
	for time.Since(start) < window {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case err := <-exited:
			running = false
			return r, fmt.Errorf("the standby exited: %v (see %s)", err, sbLog.Name())
		case <-tick.C:
			want := uint64(float64(rate) * time.Since(start).Seconds())
			if n := int(want) - int(wl.next-h.Version-1); n > 0 {
				buf = wl.lines(buf[:0], n)
				if _, err := logf.Write(buf); err != nil {
					return r, err
				}
			}
		case <-sample.C:
			m, err := scrape()
			if err != nil {
				return r, err
			}
			pending = append(pending, m["mfsha_standby_pending_lines"])
			r.copyLagMax = max(r.copyLagMax, m["mfsha_standby_stream_version"]-m["mfsha_standby_local_version"])
			r.ageMax = max(r.ageMax, m["mfsha_standby_lag_seconds"])
			r.foldRSS = max(r.foldRSS, int64(m["mfsha_standby_fold_peak_rss_bytes"]))
		}
	}
	cpu1, err := procTreeCPUSeconds(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.cpu = 100 * (cpu1 - cpu0) / time.Since(start).Seconds()
	m1, err := scrape()
	if err != nil {
		return r, err
	}
	r.hwm = lab.VmHWM(cmd.Process.Pid)
	r.folds = int(m1["mfsha_standby_fold_seconds_count"] - m0["mfsha_standby_fold_seconds_count"])
	if r.folds > 0 {
		r.foldMean = (m1["mfsha_standby_fold_seconds_sum"] - m0["mfsha_standby_fold_seconds_sum"]) / float64(r.folds)
	}
	sort.Float64s(pending)
	if len(pending) > 0 {
		r.pendingP50, r.pendingMax = pending[len(pending)/2], pending[len(pending)-1]
	}
	r.last = wl.next - 1

	// Every line shipped and on the standby's disk, then the promotion, as a failover runs it.
	if err := pollUntil(ctx, 5*time.Minute, func() bool {
		m, err := scrape()
		return err == nil && sh.Shipped().Next == r.last+1 && m["mfsha_standby_local_version"] >= float64(r.last)
	}); err != nil {
		return r, fmt.Errorf("line %d never reached the standby: shipped %+v: %w", r.last, sh.Shipped(), err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Minute):
		return r, fmt.Errorf("the standby did not stop within 5 minutes of SIGTERM (see %s)", sbLog.Name())
	}
	running = false
	if err := r.promoteFiles(ctx, filepath.Join(dir, "promoted"), sbDir, store, log); err != nil {
		return r, err
	}
	return r, nil
}

// promoteFiles promotes the stopped standby's files in sbDir as a failover does (Finish,
// HandOver, mfsmaster -a until it accepts) into data, then times mfsmaster's plain load of
// the metadata that master saved: the floor.
func (r *standbyScale) promoteFiles(ctx context.Context, data, sbDir string, store *snapshot.Store, log *slog.Logger) error {
	master := moosefs.Mfsmaster{Path: benchMooseFS.Path("mfsmaster"), Version: benchMooseFS.Version}
	sbcfg := restorer.DefaultStandbyConfig()
	sbcfg.Cluster, sbcfg.Dir, sbcfg.Verifier, sbcfg.Mfsmaster = r.cluster, sbDir, r.env.verifier, master
	sb, err := restorer.NewStandby(sbcfg, r.env.js, store, log, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	pos, newest, err := sb.Finish(ctx, r.last, time.Minute)
	if err != nil {
		return fmt.Errorf("promotion: %w", err)
	}
	if err := sb.HandOver(data); err != nil {
		return fmt.Errorf("promotion: %w", err)
	}
	r.handOver = time.Since(t0)
	// ServeTime returns once the master saved its metadata (the floor's input); its own
	// figure ends when the master accepted.
	serve, _, err := lab.ServeTime(ctx, master.Path, data, true)
	if err != nil {
		return fmt.Errorf("promotion: %w", err)
	}
	r.promote = r.handOver + serve
	r.promoteLines = newest + 1 - pos.Version
	// At least every line handed over; MooseFS 4 may log lines of its own while it runs
	// (seen: one more between its start and its stop).
	if h, err := metafile.Check(filepath.Join(data, "metadata.mfs")); err != nil || h.Version < r.last+1 {
		return fmt.Errorf("the promoted master saved %+v (%v), want version %d or more", h, err, r.last+1)
	}
	if r.promoteFloor, _, err = lab.LoadCost(ctx, master.Path, filepath.Join(data, "metadata.mfs")); err != nil {
		return fmt.Errorf("load floor of the promoted metadata: %w", err)
	}
	return nil
}

// scaleWorkload writes a busy master's metadata lines onto a tree: files created in the root
// (inodes after the tree's), their length set, times updated, opened.
type scaleWorkload struct {
	next  uint64 // version of the next line
	inode uint64 // the newest file's inode
	n     int    // lines written
}

// lines appends n lines to dst.
func (w *scaleWorkload) lines(dst []byte, n int) []byte {
	ts := time.Now().Unix()
	for range n {
		v := w.next
		w.next++
		dst = strconv.AppendUint(dst, v, 10)
		dst = append(dst, ": "...)
		dst = strconv.AppendInt(dst, ts, 10)
		w.n++
		switch (w.n - 1) % 4 {
		case 0:
			w.inode++
			dst = fmt.Appendf(dst, "|CREATE(1,s%d,1,420,18,1000,1000,0):%d\n", w.inode, w.inode)
		case 1:
			dst = fmt.Appendf(dst, "|LENGTH(%d,%d)\n", w.inode, 1000+v%100000)
		case 2:
			dst = fmt.Appendf(dst, "|AMTIME(%d,%d,%d,%d)\n", w.inode, ts, ts, ts)
		default:
			dst = fmt.Appendf(dst, "|ACCESS(%d)\n", w.inode)
		}
	}
	return dst
}

// scrapeMetrics reads a Prometheus text page into name (labels included) -> value.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// procTreeCPUSeconds is the user and system CPU time of process pid and of its children it
// waited for (the folds' mfsmaster), from /proc/PID/stat.
func procTreeCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	var sum uint64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime: fields 14-17 of proc(5)
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		sum += n
	}
	return float64(sum) / clockTicks, nil
}

// pollUntil calls ok every 100 ms until it says true, for at most within.
func pollUntil(ctx context.Context, within time.Duration, ok func() bool) error {
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
