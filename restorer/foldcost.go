package restorer

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FoldRun is what one `mfsmaster -a restore` cost, from the child's rusage and output.
type FoldRun struct {
	Took   time.Duration // wall clock
	CPU    time.Duration // user + system
	MaxRSS int64         // peak resident memory, bytes
	// Replay: from the end of loading to the last progress line, by phaseClock; zero when
	// mfsmaster printed no progress (a few thousand lines or fewer).
	Replay time.Duration
}

// phaseClock collects mfsmaster -a restore's output and times its phases as the output
// arrives (both releases print it unbuffered): after loading it prints a summary ("all
// inodes: N" ... "chunks: N"), then "progress: current change: V (...)" every few thousand
// lines while it replays, then saves the metadata silently and prints a last progress line
// ending "ETA:finished". A marker split across two writes is missed: the estimate is then a
// little short, never wrong by more than a progress step.
type phaseClock struct {
	mu           sync.Mutex
	out          bytes.Buffer
	loaded, last time.Time
}

func (p *phaseClock) Write(b []byte) (int, error) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	progress := bytes.Contains(b, []byte("progress: current change"))
	if p.loaded.IsZero() && (progress || bytes.Contains(b, []byte("chunks: "))) {
		p.loaded = now
	}
	if progress && !bytes.Contains(b, []byte("finished")) {
		p.last = now
	}
	return len(b), nil
}

func (p *phaseClock) output() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Bytes()
}

func (p *phaseClock) replay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loaded.IsZero() || p.last.Before(p.loaded) {
		return 0
	}
	return p.last.Sub(p.loaded)
}

func foldRunOf(cmd *exec.Cmd, took time.Duration) FoldRun {
	r := FoldRun{Took: took}
	if cmd.ProcessState == nil {
		return r
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSS = ru.Maxrss << 10 // kilobytes on Linux
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r
}

// FoldCost is what the standby's last fold cost and what it estimates replaying lines costs:
// shown by the node's status and as metrics.
type FoldCost struct {
	Seconds          float64 `json:"seconds"`           // the whole round: base, lines, mfsmaster, install
	MfsmasterSeconds float64 `json:"mfsmaster_seconds"` // `mfsmaster -a restore` alone
	CPUSeconds       float64 `json:"cpu_seconds"`       // its user + system time
	PeakRSS          int64   `json:"peak_rss_bytes"`    // its peak resident memory
	Lines            int     `json:"lines"`             // lines folded
	// PerLine estimates what replaying one line costs and Fixed what loading and saving the
	// metadata costs: measured from mfsmaster's progress output when it printed some
	// (FoldRun.Replay), else from mfsmaster's time over the last folds (a least-squares line
	// through (lines, seconds)). While the folds all had about the same number of lines the
	// two cannot be told apart: PerLine is then seconds/lines, an upper bound, and Fixed 0.
	PerLine float64 `json:"replay_seconds_per_line"`
	Fixed   float64 `json:"fixed_seconds"`
	// PendingReplay is PerLine times the lines waiting now: what a promotion would add to
	// mfsmaster's own load time if it came now.
	PendingReplay float64 `json:"pending_replay_seconds"`
}

// foldCosts keeps the last folds' costs. Safe for concurrent use.
type foldCosts struct {
	mu      sync.Mutex
	last    FoldCost
	folds   int // folds recorded
	n       int // samples taken (folds with lines)
	samples [16]struct{ lines, secs float64 }
}

// record adds a fold of lines lines that took took in all, run by mfsmaster as run.
func (c *foldCosts) record(run FoldRun, lines int, took time.Duration) FoldCost {
	c.mu.Lock()
	defer c.mu.Unlock()
	fc := FoldCost{Seconds: took.Seconds(), MfsmasterSeconds: run.Took.Seconds(), CPUSeconds: run.CPU.Seconds(),
		PeakRSS: run.MaxRSS, Lines: lines}
	if lines > 0 {
		c.samples[c.n%len(c.samples)] = struct{ lines, secs float64 }{float64(lines), run.Took.Seconds()}
		c.n++
	}
	fc.PerLine, fc.Fixed = c.estimate()
	if run.Replay > 0 && lines > 0 { // measured, better than the fit
		fc.PerLine = run.Replay.Seconds() / float64(lines)
		fc.Fixed = max(0, run.Took.Seconds()-run.Replay.Seconds())
	}
	c.last = fc
	c.folds++
	return fc
}

// estimate fits seconds = Fixed + PerLine*lines over the samples. Called with mu held.
func (c *foldCosts) estimate() (perLine, fixed float64) {
	k := min(c.n, len(c.samples))
	if k == 0 {
		return 0, 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range c.samples[:k] {
		sx += s.lines
		sy += s.secs
		sxx += s.lines * s.lines
		sxy += s.lines * s.secs
	}
	n := float64(k)
	mx, my := sx/n, sy/n
	varx := sxx/n - mx*mx
	// Lines spread by less than a tenth of their mean: no usable slope.
	if k >= 3 && varx > 0.01*mx*mx {
		slope := (sxy/n - mx*my) / varx
		if icpt := my - slope*mx; slope > 0 && icpt >= 0 {
			return slope, icpt
		}
	}
	return sy / sx, 0
}

// FoldCost returns the last fold's cost, with the replay cost of the lines waiting now; ok is
// false before the first fold.
func (s *Standby) FoldCost() (FoldCost, bool) {
	s.costs.mu.Lock()
	fc, ok := s.costs.last, s.costs.folds > 0
	s.costs.mu.Unlock()
	if pending := int64(s.Local()) - int64(s.Materialized().Version); ok && pending > 0 {
		fc.PendingReplay = fc.PerLine * float64(pending)
	}
	return fc, ok
}

// recordFold records a fold's cost in the metrics.
func (s *Standby) recordFold(run FoldRun, lines int, took time.Duration) {
	fc := s.costs.record(run, lines, took)
	m := s.m.Cost
	m.PeakRSS.Set(float64(fc.PeakRSS))
	m.Lines.Set(float64(fc.Lines))
	m.Mfsmaster.Set(fc.MfsmasterSeconds)
	m.CPU.Add(fc.CPUSeconds)
	m.PerLine.Set(fc.PerLine)
	m.Fixed.Set(fc.Fixed)
}

// FoldCostMetrics are the series of the folds' costs (mfsha_standby_fold_*).
type FoldCostMetrics struct {
	PeakRSS, Lines, Mfsmaster, PerLine, Fixed prometheus.Gauge
	CPU                                       prometheus.Counter
}

func newFoldCostMetrics() *FoldCostMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mfsha", Subsystem: "standby", Name: name, Help: help})
	}
	return &FoldCostMetrics{
		PeakRSS:   g("fold_peak_rss_bytes", "Peak resident memory of mfsmaster in the last fold (the memory a fold needs)."),
		Lines:     g("fold_lines", "Lines folded by the last fold."),
		Mfsmaster: g("fold_mfsmaster_seconds", "Duration of mfsmaster -a restore in the last fold."),
		PerLine:   g("replay_seconds_per_line", "Estimated cost of replaying one line (an upper bound while every fold has about as many lines)."),
		Fixed:     g("fold_fixed_seconds", "Estimated part of a fold that does not depend on its lines (loading and saving the metadata)."),
		CPU: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mfsha", Subsystem: "standby", Name: "fold_cpu_seconds_total",
			Help: "User and system CPU time of the folds' mfsmaster processes."}),
	}
}

func (m *FoldCostMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.PeakRSS, m.Lines, m.Mfsmaster, m.PerLine, m.Fixed, m.CPU}
}
