package failover

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mfsha/mfsha/internal/chunklock"
)

// Pending repairs of lost chunks, handed from term to term (DESIGN.md, "A new chunk that no
// chunkserver created"). The locks a promotion releases are known to that term alone: its
// UNLOCK lines are shipped, so the next master finds them released and knows nothing of the
// chunks. A term that ended before its master could tell whether such a chunk was lost (a
// switchover, a failure, a power-off within the seconds the chunkservers take to register
// again) left the chunk unreadable and its writer stuck for ever.
//
// So a term that has chunks to check writes them to the key repairs of the members bucket
// (written only by failover nodes, like members) before it checks them, and deletes the
// record, if it is still its own, once they are settled. The next term adopts the locks of a
// record it finds, besides its own.
//
// Who may believe what: a record is a hint, never a verdict. The master alone decides that a
// chunk is lost (lostchunks.go), and each lock is checked again against the file (the chunk
// must still be the file's) before a repair. A record's locks are adopted only within
// lostRepairFor of the locking line's time: the client of a write older than that gave up
// long ago, and a chunk lost later for another reason (a dead disk) is the operator's to
// repair, not ours. A record of a newer term than this one is never overwritten: this term is
// fenced, or about to be.

// repairsKey is the members bucket's key of the pending repairs.
const repairsKey = "repairs"

// RepairsRecord is the value of the repairs key: the chunk locks the term of Epoch checks.
type RepairsRecord struct {
	Holder  string           `json:"holder"`
	Epoch   uint64           `json:"epoch"`
	Locks   []chunklock.Lock `json:"locks"`
	Written time.Time        `json:"written"`
}

// WriteRepairs replaces the repairs record and returns its revision.
func (l *Lease) WriteRepairs(ctx context.Context, r RepairsRecord) (uint64, error) {
	return l.putMembersKey(ctx, repairsKey, r, "the pending repairs")
}

// Repairs reads the repairs record from its stream's leader; rev is 0 when there is none.
func (l *Lease) Repairs(ctx context.Context) (r RepairsRecord, rev uint64, err error) {
	rev, err = l.getMembersKey(ctx, repairsKey, &r, "pending repairs")
	return r, rev, err
}

// ClearRepairs deletes the repairs record if it is still the one at revision rev (the one
// this term wrote): a later term's record stays.
func (l *Lease) ClearRepairs(ctx context.Context, rev uint64) error {
	return l.deleteMembersKey(ctx, repairsKey, rev, "clear the pending repairs")
}

// adoptable returns the locks of the record a later term adopts at now: those locked within
// lostRepairFor (pendingRepairs refuses a newer term's record before it asks).
func (r RepairsRecord) adoptable(now time.Time) []chunklock.Lock {
	var out []chunklock.Lock
	for _, l := range r.Locks {
		if l.Inode != 0 && now.Sub(time.Unix(int64(l.Time), 0)) < lostRepairFor {
			out = append(out, l)
		}
	}
	return out
}

// mergeLocks returns own and then those of adopted whose chunk own does not name.
func mergeLocks(own, adopted []chunklock.Lock) []chunklock.Lock {
	out := slices.Clone(own)
	for _, a := range adopted {
		if !slices.ContainsFunc(out, func(l chunklock.Lock) bool { return l.Chunk == a.Chunk }) {
			out = append(out, a)
		}
	}
	return out
}

// repairsCall bounds each read or write of the repairs record: the repair waits for it, the
// term never does.
const repairsCall = 3 * time.Second

// pendingRepairs is the start of a term's repair of lost chunks: the locks it released (own,
// located), with those an earlier term's record still lists. It writes them as this term's
// record and returns them with the record's revision (0 when nothing was written). NATS
// unavailable, the term checks its own locks and says that none are handed on.
func pendingRepairs(ctx context.Context, l *Lease, holder string, epoch uint64, own []chunklock.Lock, now time.Time) ([]chunklock.Lock, uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, repairsCall)
	defer cancel()
	prev, _, err := l.Repairs(rctx)
	if err != nil {
		return own, 0, err
	}
	if prev.Epoch > epoch {
		return own, 0, fmt.Errorf("the pending repairs record is of a newer term (epoch %d, this one %d); left as it is", prev.Epoch, epoch)
	}
	locks := mergeLocks(own, prev.adoptable(now))
	if len(locks) == 0 {
		return nil, 0, nil
	}
	rev, err := l.WriteRepairs(rctx, RepairsRecord{Holder: holder, Epoch: epoch, Locks: locks, Written: now.UTC()})
	return locks, rev, err
}
