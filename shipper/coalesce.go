package shipper

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// forwardEvents turns file events into wake-ups, for the changelog reader or, for the names
// of snapshot files, the uploader; a burst of events becomes one wake-up.
//
// After a wake-up of the reader it takes no event for delay. mfsmaster writes (and flushes)
// every changelog line on its own, so at 10,000 lines/s the kernel reports 10,000
// modifications a second; read one by one, each costs this process a wake-up, a read of the
// file and, when the reader is idle, a batch of one line (compressed, signed, published and
// acknowledged). While this loop does not take events, fsnotify's reader blocks on its
// channel and the kernel merges the file's further modifications into the one event queued
// last (inotify(7): identical successive events are merged), so a burst costs two events
// and the reader ships what the master wrote meanwhile as one batch. The price is at most
// delay of extra lag in the stream. It costs no line: the merged event still wakes the reader
// after delay, and POLL re-reads the files anyway. What a standby or a promotion needs
// first never waits for it: the node drains every file to the stream before it releases the
// lease, and a standby's metalogger gets the lines from mfsmaster directly.
func forwardEvents(ctx context.Context, w *fsnotify.Watcher, wake, snapWake chan<- struct{}, snapNames []string, delay time.Duration, log *slog.Logger) {
	isSnap := map[string]bool{}
	for _, n := range snapNames {
		isSnap[n] = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if isSnap[filepath.Base(ev.Name)] {
				notify(snapWake)
				continue
			}
			notify(wake)
			if delay > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("file watch error; relying on polling", "err", err)
		}
	}
}

// notify wakes the receiver of ch unless a wake-up is already pending.
func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
