package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/restorer"
)

// restoreCommand is `mfsha restore`.
type restoreCommand struct {
	nats     natsSettings
	logs     logSettings
	to       string
	version  int
	timeline int
	out      string
	list     bool
	dryRun   bool
	force    bool
	// mfsmaster is MFSMASTER_BIN: the binary that folds.
	mfsmaster string
	work      string
	foldUser  string
	keys      keySettings
}

const restoreUsage = `Usage: mfsha restore [--nats URL] [--cluster NAME] (--to TIME | --version N) --out DIR
       mfsha restore --list

Rebuilds DIR/metadata.mfs as of TIME (RFC 3339, like 2026-11-25T07:30:00Z, or unix seconds:
the state after the last change at or before it) or as of version N (the state after changelog
line N), from the newest snapshot at or before the target and the changelog lines after it. The
result is folded by the real mfsmaster -a restore, its version checked, and written atomically.
Without --to or --version it restores the newest state. It uses the newest timeline unless
--timeline says otherwise, and never mixes timelines.`

func (c *restoreCommand) Run(ctx context.Context, args []string) error {
	s := config.New("restore", restoreUsage)
	c.nats.bind(s)
	c.logs.bind(s)
	s.String(&c.to, "to", "RESTORE_TO", "", "restore to this `time` (RFC 3339 or unix seconds)")
	s.Int(&c.version, "version", "RESTORE_VERSION", 0, "restore to the state after changelog line `N`")
	s.Int(&c.timeline, "timeline", "RESTORE_TIMELINE", 0, "restore from this `timeline` (default: the newest)")
	s.String(&c.out, "out", "RESTORE_OUT", "", "write `DIR`/metadata.mfs")
	s.Bool(&c.list, "list", "RESTORE_LIST", false, "show what can be restored and exit")
	s.Bool(&c.dryRun, "dry-run", "RESTORE_DRY_RUN", false, "say which snapshot and lines would be used, change nothing")
	s.Bool(&c.force, "force", "RESTORE_FORCE", false, "replace an existing DIR/metadata.mfs")
	s.String(&c.mfsmaster, "mfsmaster", "MFSMASTER_BIN", "mfsmaster", "the mfsmaster `binary` that folds: the cluster's MooseFS release or newer")
	s.String(&c.work, "work", "RESTORE_WORK", "", "make the private work `directory` here (default: beside DIR, in its parent); it needs about twice the metadata's size")
	s.String(&c.foldUser, "fold-user", "FOLD_USER", restorer.DefaultFoldUser(), "the unprivileged `user` mfsmaster folds as, when run as root")
	c.keys.bindTrusted(s)
	log, err := setup(s, args, &c.logs, &c.nats)
	if err != nil {
		return err
	}
	target, err := c.target()
	if err != nil {
		return usageError{err}
	}
	if !c.list && !c.dryRun && c.out == "" {
		return usageError{errors.New("--out DIR is required")}
	}
	var master moosefs.Mfsmaster
	if !c.list { // before anything is downloaded: a missing binary is a setting's error
		if master, err = moosefs.FindMfsmaster(ctx, c.mfsmaster); err != nil {
			return usageError{err}
		}
	}
	if _, err := restorer.LookupFoldUser(c.foldUser); err != nil {
		return usageError{err}
	}
	// --list and --dry-run read headers only and fold nothing; anything that folds verifies.
	var verifier *sign.Verifier
	if !c.list && !c.dryRun {
		if verifier, err = c.keys.verifier(); err != nil {
			return usageError{err}
		}
	}
	conn, err := connect(ctx, c.nats, nil, "", "mfsha restore", 30*time.Second, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	h, err := readHistory(ctx, conn, c.nats.cluster)
	if err != nil {
		return err
	}
	tls, store, snaps := h.timelines, h.store, h.snaps
	if c.list {
		printTimelines(os.Stdout, c.nats.cluster, tls)
		printSnapshots(os.Stdout, c.nats.cluster, snaps)
		return nil
	}
	plan, err := restorer.CalcPlan(tls, snaps, uint64(c.timeline), target)
	if err != nil {
		return err
	}
	fmt.Println(describePlan(plan))
	fmt.Printf("fold with %s\n", master)
	if c.dryRun {
		return nil
	}
	start := time.Now()
	res, err := restorer.Apply(ctx, conn.js, store, plan, restorer.Options{Cluster: c.nats.cluster, OutDir: c.out, Force: c.force,
		Mfsmaster: master, WorkDir: c.work, FoldUser: c.foldUser, Verifier: verifier, Progress: progress(plan), Log: log})
	if err != nil {
		return err
	}
	fmt.Printf("restored %s: version %d (%d lines applied, last line %d at %s) in %v\n", res.Path, res.Version, res.Lines,
		res.LastLine, fmtTime(res.LastTime), time.Since(start).Round(time.Millisecond))
	// The mark a failover node needs to serve this history on a new timeline (README, "Back
	// to HA after a point-in-time restore").
	if err := restorer.WriteRestored(c.out, restorer.Restored{Cluster: c.nats.cluster, Timeline: plan.Timeline.Timeline,
		Version: res.Version, LastTime: res.LastTime, At: time.Now().UTC()}); err != nil {
		return err
	}
	return nil
}

func (c *restoreCommand) target() (restorer.Target, error) {
	if c.to != "" && c.version != 0 {
		return restorer.Target{}, errors.New("--to and --version: give one")
	}
	if c.version < 0 {
		return restorer.Target{}, fmt.Errorf("--version %d: want a positive version", c.version)
	}
	if c.to == "" {
		return restorer.Target{Version: uint64(c.version)}, nil
	}
	if n, err := strconv.ParseInt(c.to, 10, 64); err == nil {
		return restorer.Target{Time: time.Unix(n, 0)}, nil
	}
	t, err := time.Parse(time.RFC3339, c.to)
	if err != nil {
		return restorer.Target{}, fmt.Errorf("--to %q: want RFC 3339 (2026-11-25T07:30:00Z) or unix seconds", c.to)
	}
	return restorer.Target{Time: t}, nil
}

func describePlan(p restorer.Plan) string {
	base := "an empty file system (version 1)"
	if p.Snapshot != nil {
		base = fmt.Sprintf("snapshot %s (version %d, %s, %d bytes)", p.Snapshot.Name, p.Snapshot.Version, fmtTime(p.Snapshot.Time), p.Snapshot.Size)
	}
	lines := "no changelog lines"
	if p.From <= p.To {
		lines = fmt.Sprintf("changelog lines %d..%d of timeline %d", p.From, p.To, p.Timeline.Timeline)
		if !p.Target.Time.IsZero() {
			lines += fmt.Sprintf(", stopping after the last one at or before %s", p.Target.Time.UTC().Format(time.RFC3339))
		}
	}
	return fmt.Sprintf("plan: restore to %s from %s, then %s", p.Target, base, lines)
}

// progress draws a bar on a terminal and logs plain lines otherwise.
func progress(p restorer.Plan) snapshot.Progress {
	if p.Snapshot == nil {
		return nil
	}
	tty := false
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	return func(done, total int64) {
		pct := 100 * float64(done) / float64(max(total, 1))
		if tty {
			bar := int(pct / 4)
			fmt.Fprintf(os.Stderr, "\rsnapshot [%-25s] %5.1f%% %d/%d MB", strings.Repeat("#", bar), pct, done>>20, total>>20)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
			return
		}
		fmt.Fprintf(os.Stderr, "snapshot download: %d/%d bytes (%.0f%%)\n", done, total, pct)
	}
}
