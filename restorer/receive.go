package restorer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mfsha/mfsha/internal/mlproto"
)

// receiveSpool receives the master's changelog over the metalogger protocol (RECEIVE, e.g.
// VIP:9419) and appends each line, as it arrives, with one write(2) to DIR/ml/
// changelog_ml.0.mfs: the files of a metalogger, which the standby merges as it merges a local
// mfsmetalogger's (metaloggerSource). It replaces the local mfsmetalogger and its one-second
// buffer: a line reaches the standby's disk within a packet of the master sending it
// (failover/DESIGN.md, "Receiving the changelog in real time").
type receiveSpool struct {
	addr string
	dir  string
	log  *slog.Logger
	f    *os.File
	size int64
}

// spoolRotateAt: the live file is moved to changelog_ml.1.mfs beyond this size (the reader
// follows a new file from its start, as after mfsmetalogger's hourly rotation).
const spoolRotateAt = 128 << 20

// spoolRetry separates two runs of the receiver after one ended with an error.
const spoolRetry = time.Second

func newReceiveSpool(addr, dir string, log *slog.Logger) (*receiveSpool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("standby: RECEIVE: %w", err)
	}
	return &receiveSpool{addr: addr, dir: dir, log: log}, nil
}

// run receives until ctx ends, each run asking for the lines from next() on (the standby's
// next version: the master resends what it still holds in memory). A run that ends with an
// error (a gap, a new timeline, a full disk) is followed by a fresh file and a new run.
func (sp *receiveSpool) run(ctx context.Context, next func() uint64) {
	defer sp.close()
	for ctx.Err() == nil {
		if err := sp.rotate(); err != nil {
			sp.log.Error("standby: RECEIVE: cannot start a spool file", "dir", sp.dir, "err", err)
		} else {
			r, err := mlproto.New(mlproto.Config{Addr: sp.addr, Next: next(), Log: sp.log})
			if err != nil {
				sp.log.Error("standby: RECEIVE", "err", err)
				return
			}
			err = r.Run(ctx, sp.deliver)
			if ctx.Err() != nil {
				return
			}
			var gap *mlproto.GapError
			if errors.As(err, &gap) {
				sp.log.Info("standby: RECEIVE: the master cannot resend every line asked for; the stream has them", "err", err)
			} else {
				sp.log.Warn("standby: RECEIVE: the receiver stopped; starting again", "master", sp.addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(spoolRetry):
		}
	}
}

// deliver appends one line (already checked by the receiver's caller below).
func (sp *receiveSpool) deliver(_ context.Context, l mlproto.Line) error {
	if sp.size >= spoolRotateAt {
		if err := sp.rotate(); err != nil {
			return err
		}
	}
	n, err := sp.f.Write(l.Text)
	sp.size += int64(n)
	if err != nil {
		return fmt.Errorf("spool %s: %w", sp.f.Name(), err)
	}
	return nil
}

// rotate moves the live file (if any) to changelog_ml.1.mfs and opens a new one.
func (sp *receiveSpool) rotate() error {
	live := filepath.Join(sp.dir, "changelog_ml.0.mfs")
	sp.close()
	if err := os.Rename(live, filepath.Join(sp.dir, "changelog_ml.1.mfs")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(live, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	sp.f, sp.size = f, 0
	return nil
}

func (sp *receiveSpool) close() {
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
}
