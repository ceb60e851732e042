package failover

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// keeper holds the lease once taken: it renews it every RenewEvery and, when renewal has not
// succeeded for RenewEvery + 2*RenewTimeout (or the lease was taken by another), closes lost so
// that the node fences itself while the lease is still its own (see Config).
type keeper struct {
	lease *Lease
	cfg   Config
	log   *slog.Logger

	mu     sync.Mutex // serializes writes of the record
	rec    LeaseRecord
	rev    uint64
	lastOK time.Time    // when the last successful write was sent
	okAt   atomic.Int64 // lastOK in unix nanoseconds, readable without mu (for Serving)
	taken  uint64       // the epoch the lease was taken with; never changes, readable without mu

	lost     chan struct{} // closed when the node must fence itself
	lostOnce sync.Once
	stop     chan struct{} // closed to end the renewals
	stopOnce sync.Once
	done     chan struct{} // closed when run has returned
}

// hold starts renewing the lease taken at revision rev (the epoch) with record rec, until ctx
// ends or the lease is lost. sent is when the taking request was sent.
func hold(ctx context.Context, l *Lease, cfg Config, log *slog.Logger, rec LeaseRecord, rev uint64, sent time.Time) *keeper {
	k := &keeper{lease: l, cfg: cfg, log: log, rec: rec, rev: rev, lastOK: sent, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	k.okAt.Store(sent.UnixNano())
	k.taken = rev
	// Not ctx's end, only release or a loss ends the renewals: a node that stops hands over
	// (stops its master cleanly, ships) while still holding the lease.
	go k.run(context.WithoutCancel(ctx))
	return k
}

func (k *keeper) epoch() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rec.Epoch
}

// deadline is when the node must start fencing.
func (k *keeper) deadline() time.Time {
	return k.lastOK.Add(k.cfg.RenewEvery + 2*k.cfg.RenewTimeout)
}

func (k *keeper) markLost(why error) {
	k.lostOnce.Do(func() {
		k.log.Error("lease lost: fencing", "epoch", k.rec.Epoch, "err", why)
		close(k.lost)
	})
}

func (k *keeper) run(ctx context.Context) {
	defer close(k.done)
	t := time.NewTimer(k.cfg.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.stop:
			return
		case <-t.C:
		}
		err := k.write(ctx, nil)
		switch {
		case err == nil:
			t.Reset(k.cfg.RenewEvery)
		case errors.Is(err, ErrLeaseLost):
			k.markLost(err)
			return
		case ctx.Err() != nil:
			return
		default:
			k.mu.Lock()
			left := time.Until(k.deadline())
			k.mu.Unlock()
			if left <= 0 {
				k.markLost(err)
				return
			}
			k.log.Warn("lease renewal failed; retrying", "err", err, "fence_in", left.Round(time.Millisecond))
			t.Reset(0)
		}
	}
}

// write renews the lease, after applying change to the record if not nil. Each attempt is
// bounded by RenewTimeout and by the fencing deadline.
func (k *keeper) write(ctx context.Context, change func(*LeaseRecord)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rec := k.rec
	if change != nil {
		change(&rec)
	}
	limit := min(k.cfg.RenewTimeout, time.Until(k.deadline()))
	if limit <= 0 {
		return errors.New("past the fencing deadline")
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	sent := time.Now()
	rev, err := k.lease.Renew(wctx, rec, k.rev)
	if err != nil {
		return err
	}
	k.rec, k.rev, k.lastOK = rec, rev, sent
	k.okAt.Store(sent.UnixNano())
	return nil
}

// update changes the record now (e.g. the state), renewing the lease.
func (k *keeper) update(ctx context.Context, change func(*LeaseRecord)) error {
	err := k.write(ctx, change)
	if errors.Is(err, ErrLeaseLost) {
		k.markLost(err)
	}
	return err
}

// release stops renewing and marks the lease released with rec's Final, To and Reason, if it
// is still ours. After release the node must hold nothing: call it only once fenced.
func (k *keeper) release(ctx context.Context, final uint64, to, reason string) error {
	k.markStopped()
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	rec := k.rec
	rec.Final, rec.To, rec.Reason, rec.Since = final, to, reason, time.Now().UTC()
	rctx, cancel := context.WithTimeout(ctx, 2*k.cfg.RenewTimeout)
	defer cancel()
	return k.lease.Release(rctx, rec, k.rev)
}

// markStopped ends the renewals without reporting a loss.
func (k *keeper) markStopped() {
	k.stopOnce.Do(func() { close(k.stop) })
}
