package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mfsha/mfsha/internal/failsafe"
)

// keeper holds the lease once taken: it renews it every RenewEvery and, when renewal has not
// succeeded for RenewEvery + 2*RenewTimeout (or the lease was taken by another), closes lost so
// that the node fences itself while the lease is still its own (see Config).
//
// With failsafe (cov set, and armed once the members record is committed), a holder whose
// renewals fail keeps serving while every member's promise covers it for MasterStopTimeout
// more (DESIGN.md, "Failsafe"): it fences when neither the lease nor the promises cover it.
type keeper struct {
	lease *Lease
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	cov   *failsafe.Coverage // nil without failsafe
	armed atomic.Bool        // the coverage may be counted on (see members)

	mu   sync.Mutex // serializes writes of the record
	rec  LeaseRecord
	rev  uint64
	okAt atomic.Int64  // when the last successful write was sent, unix nanoseconds
	ep   atomic.Uint64 // rec.Epoch, readable without mu: fixed for the term (retake keeps it)

	lost     chan struct{} // closed when the node must fence itself
	lostOnce sync.Once
	stop     chan struct{} // closed to end the renewals
	stopOnce sync.Once
	done     chan struct{} // closed when run has returned
}

// hold starts renewing the lease taken at revision rev (the epoch) with record rec, until ctx
// ends or the lease is lost. sent is when the taking request was sent.
// cov, when not nil, is the term's failsafe coverage.
func hold(ctx context.Context, l *Lease, cfg Config, log *slog.Logger, m *Metrics, cov *failsafe.Coverage, rec LeaseRecord, rev uint64, sent time.Time) *keeper {
	k := &keeper{lease: l, cfg: cfg, log: log, m: m, cov: cov, rec: rec, rev: rev, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	k.okAt.Store(sent.UnixNano())
	k.ep.Store(rev)
	// Not ctx's end, only release or a loss ends the renewals: a node that stops hands over
	// (stops its master cleanly, ships) while still holding the lease.
	go k.run(context.WithoutCancel(ctx))
	go k.watch()
	return k
}

// watch marks the lease lost as soon as fenceAt has passed, without waiting for a renewal
// attempt to return: fenceAt can move earlier while one is in flight (a new member joins the
// coverage uncovered), and the fence must start on time regardless.
func (k *keeper) watch() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-k.lost:
			return
		case <-t.C:
		}
		if time.Now().After(k.fenceAt()) {
			k.markLost(errors.New("neither a renewal nor the failsafe promises cover this node any more"))
			return
		}
	}
}

func (k *keeper) epoch() uint64 { return k.ep.Load() }

// errLostWhileStarting ends what a term runs before it serves (mfsmaster's start) once the
// lease is lost.
var errLostWhileStarting = fmt.Errorf("lease lost while starting: %w", ErrLeaseLost)

// whileHeld returns a context that ends with ctx, or as soon as the lease is lost (its cause
// then wraps ErrLeaseLost). What a promotion or boot starts under it (mfsmaster loading a big
// metadata for tens of seconds) is stopped at the fence deadline, not when it is done:
// otherwise the node would keep the VIP and a loading mfsmaster past the lease's expiry,
// when another node may promote. The caller calls cancel.
func (k *keeper) whileHeld(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-k.lost:
			cancel(errLostWhileStarting)
		case <-c.Done():
		}
	}()
	return c, func() { cancel(nil) }
}

// deadline is when the node must start fencing on the lease alone.
func (k *keeper) deadline() time.Time {
	return k.lastRenewal().Add(k.cfg.RenewEvery + 2*k.cfg.RenewTimeout)
}

// covered is until when the failsafe promises let the node serve: its fence, started then,
// ends before the first member's promise may end (failsafe.Coverage.ServeUntil). ok is false
// without failsafe, before it is armed, or while a member has not answered.
func (k *keeper) covered() (time.Time, bool) {
	if k.cov == nil || !k.armed.Load() {
		return time.Time{}, false
	}
	return k.cov.ServeUntil()
}

// fenceAt is when the node must start fencing: the lease's deadline, or later while the
// promises cover it. It may move earlier: a member added to the coverage has not answered yet.
func (k *keeper) fenceAt() time.Time {
	d := k.deadline()
	if c, ok := k.covered(); ok && c.After(d) {
		return c
	}
	return d
}

// lastRenewal is when the last successful write of the lease was sent.
func (k *keeper) lastRenewal() time.Time { return time.Unix(0, k.okAt.Load()) }

// armFailsafe lets the keeper count on the coverage from now on; true the first time.
func (k *keeper) armFailsafe() bool { return k.cov != nil && !k.armed.Swap(true) }

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
	failing := false // renewals have been failing since the last success
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.stop:
			return
		case <-k.lost:
			return
		case <-t.C:
		}
		err := k.write(ctx, nil)
		if errors.Is(err, ErrLeaseLost) {
			err = k.retake(ctx, err)
		}
		switch {
		case err == nil:
			if failing {
				k.log.Info("lease renewed again", "epoch", k.epoch())
				failing = false
				k.onPromises(false)
			}
			t.Reset(k.cfg.RenewEvery)
		case errors.Is(err, ErrLeaseLost):
			k.markLost(err)
			return
		case ctx.Err() != nil:
			return
		default:
			left, onPromises := time.Until(k.fenceAt()), time.Now().After(k.deadline())
			if left <= 0 {
				k.markLost(err)
				return
			}
			if !failing {
				failing = true
				k.log.Warn("lease renewal failed; retrying", "err", err, "fence_in", left.Round(time.Millisecond))
			}
			k.onPromises(onPromises)
			k.log.Debug("lease renewal failed; retrying", "err", err, "fence_in", left.Round(time.Millisecond), "on_promises", onPromises)
			// Retry at once, but do not spin on a NATS that fails fast (no responders).
			t.Reset(min(50*time.Millisecond, left))
		}
	}
}

// retake follows a renewal that found the lease not at its revision. When the record simply
// expired (the bucket's MaxAge runs on every replica, even while the stream elects a leader)
// and the failsafe promises cover this node, it takes the lease again by create, at the same
// epoch: the term goes on. Otherwise the lease is lost (err is returned).
//
// Why the same epoch is safe (who may believe what): the epoch orders terms; every consumer
// (batches in the stream, failsafe holds, tickle lists, switchover requests) only refuses an
// epoch older than one it saw. Between the expiry and this create no other term can have
// begun: every node that may take an expired lease is a member under promise (it takes none
// while its promise runs, and this node still counts on every promise: covered), and a create
// succeeds only on an absent key, so any node that had taken it would make this create fail
// and this node fence. Nobody can therefore have seen an epoch newer than this term's, and
// the same mfsmaster process keeps serving, with the same batches, holds and lists. A new
// epoch would instead tell every consumer that a new term began where none did, and make the
// members refuse nothing more than before.
func (k *keeper) retake(ctx context.Context, lost error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.covered()
	if !ok || !time.Now().Before(c) {
		return lost
	}
	rctx, cancel := context.WithTimeout(ctx, min(k.cfg.RenewTimeout, time.Until(c)))
	defer cancel()
	cur, rev, err := k.lease.Read(rctx)
	if err != nil {
		return fmt.Errorf("%w (and the lease could not be read: %v)", lost, err)
	}
	if rev != 0 {
		return fmt.Errorf("%w: now %q by %s at epoch %d", lost, cur.State, cur.Holder, cur.Epoch)
	}
	rec := k.rec
	rec.Since = time.Now().UTC()
	sent := time.Now()
	next, err := k.lease.Retake(rctx, rec)
	if err != nil {
		return fmt.Errorf("%w: taking it again on failsafe promises: %v", lost, err)
	}
	k.rec, k.rev = rec, next
	k.okAt.Store(sent.UnixNano())
	k.log.Warn("the lease expired while NATS could not take renewals; taken again on the failsafe promises (same mfsmaster, same epoch)",
		"epoch", rec.Epoch, "revision", next)
	return nil
}

// onPromises sets the metric of serving on promises alone.
func (k *keeper) onPromises(v bool) {
	if k.m == nil {
		return
	}
	if v {
		k.m.FailsafeServing.Set(1)
	} else {
		k.m.FailsafeServing.Set(0)
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
	limit := min(k.cfg.RenewTimeout, time.Until(k.fenceAt()))
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
	k.rec, k.rev = rec, rev
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
