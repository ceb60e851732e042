package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/shipper"
)

// shipFirstLimit bounds shipFirst: well above the tens of milliseconds it takes.
const shipFirstLimit = 500 * time.Millisecond

// shipFirst ships, before mfsmaster starts, every line a promotion handed over to it: up to
// version last in the master's DATA_PATH (the stream's lines, then those only this standby
// had, from its metalogger or its receiver, then the UNLOCK and NEXTCHUNKID lines the
// promotion appended). A shipper stamped with the term's epoch runs on the files until the
// stream holds last, at most shipFirstLimit, and is stopped before mfsmaster starts. It returns
// the stream's newest version then (0 if unknown). It costs a promotion 25-45 ms in the lab
// (a shipper's start: the stream's tail read and checked, one batch published), and runs only
// when the standby has lines the stream lacks.
//
// Why: the lines only this standby had were otherwise shipped by the new master's shipper once
// it served. When the promotion failed after the hand-over (mfsmaster did not start, or served
// another version than the lines make), the lease was released without them and the next
// promoter, materializing from the stream, served without them: acknowledged writes lost in a
// double fault (seen in TestFailoverRefusesWrongVersion on 4.59.2: lines 3817-3818 were only in
// mb's metalogger, mb's promotion was refused, ma promoted from the stream at 3816). With the
// stream holding them first, every later promoter has them; abandon passes the version on as
// the released record's Final, so the next one waits until it has read that far.
//
// Safety (who may believe what): this node holds the lease (epoch E, acquired by
// compare-and-set), so its batches are the only ones a reader accepts after the old master's
// (stream.SignedHeader: epoch and the sole-writer check on the stream's last sequence). The
// lines are the old master's own (each checked to continue the stream by version and hash when
// the standby merged them) and this promotion's UNLOCK and NEXTCHUNKID lines, which are safe in
// any later master for the reasons releaseChunkLocks gives (the master that locked is fenced).
// No mfsmaster runs on these files while this shipper does, so nothing but the handed-over
// lines can be shipped: a master that then serves a wrong version never reaches the stream.
// Another writer on the stream (shipper.ErrNotSoleWriter) ends the promotion. A stream that
// does not take the lines in time (its leader being elected: the lease's bucket answered, the
// stream is another raft group) only costs that guarantee: the promotion goes on, and the new
// master's shipper ships them, as before this was built. The limit is short for that reason: a
// failover must not wait out a NATS election for a double fault's sake.
func (n *Node) shipFirst(ctx context.Context, t *term, last uint64) (uint64, error) {
	sh, err := n.d.NewShipper(t.k.epoch, true)
	if err != nil {
		return 0, fmt.Errorf("shipper: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- sh.Run(sctx) }()
	stop := func() uint64 {
		cancel()
		<-done
		if next := sh.Shipped().Next; next > 0 {
			return next - 1
		}
		return 0
	}
	deadline := time.NewTimer(shipFirstLimit)
	defer deadline.Stop()
	for {
		sh.ReadNow()
		if sh.Shipped().Next > last {
			return stop(), nil
		}
		select {
		case err := <-done:
			done <- err
			shipped := stop()
			if errors.Is(err, shipper.ErrNotSoleWriter) {
				return 0, fmt.Errorf("ship the handed-over lines: %w", err)
			}
			n.log.Warn("the handed-over lines were not all shipped before mfsmaster starts; its shipper will", "shipped", shipped, "last", last, "err", err)
			return shipped, nil
		case <-deadline.C:
			shipped := stop()
			n.log.Warn("the handed-over lines were not all shipped before mfsmaster starts; its shipper will", "shipped", shipped, "last", last, "waited", shipFirstLimit)
			return shipped, nil
		case <-ctx.Done():
			stop()
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
