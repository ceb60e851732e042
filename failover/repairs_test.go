package failover

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/chunklock"
	"github.com/mfsha/mfsha/internal/jstest"
)

// TestPendingRepairsAreHandedOn: through real JetStream, what a term that ended before its
// checks settled (a switchover, a failure) leaves is adopted by the next term with its own
// locks; the old term's late clear does not remove the new term's record; the new term's
// clear does; a lock older than lostRepairFor and a newer term's record are never adopted.
func TestPendingRepairsAreHandedOn(t *testing.T) {
	js := jstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := OpenLease(ctx, js, "rp", time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	at := func(ago time.Duration) uint32 { return uint32(now.Add(-ago).Unix()) }
	a := chunklock.Lock{Chunk: 10, Inode: 3, Index: 0, Version: 100, Time: at(5 * time.Second), Op: "WRITE"}
	old := chunklock.Lock{Chunk: 11, Inode: 4, Index: 1, Version: 90, Time: at(lostRepairFor + time.Minute), Op: "WRITE"}
	b := chunklock.Lock{Chunk: 12, Inode: 5, Index: 0, Version: 120, Time: at(time.Second), Op: "TRUNC"}

	// Nothing pending, nothing released: no record.
	if locks, rev, err := pendingRepairs(ctx, l, "ma", 1, nil, now); err != nil || len(locks) != 0 || rev != 0 {
		t.Fatalf("a first term without locks: %v, rev %d, %v; want nothing written", locks, rev, err)
	}
	// Term 2 (ma) released a and old, and is switched over before they settle.
	locks, rev2, err := pendingRepairs(ctx, l, "ma", 2, []chunklock.Lock{a, old}, now)
	if err != nil || rev2 == 0 || len(locks) != 2 {
		t.Fatalf("term 2: %v, rev %d, %v; want its two locks written", locks, rev2, err)
	}
	// Term 3 (mb) released b and adopts a; old is beyond lostRepairFor and a duplicate of b
	// is not checked twice.
	locks, rev3, err := pendingRepairs(ctx, l, "mb", 3, []chunklock.Lock{b}, now)
	if err != nil || rev3 == 0 {
		t.Fatalf("term 3: %v, %v", rev3, err)
	}
	if want := []chunklock.Lock{b, a}; !slices.Equal(locks, want) {
		t.Fatalf("term 3 checks %+v; want its own then the adopted one: %+v", locks, want)
	}
	// Term 2's late clear (its revision) must not remove term 3's record.
	if err := l.ClearRepairs(ctx, rev2); err == nil {
		t.Fatal("term 2 cleared the record term 3 wrote")
	}
	r, _, err := l.Repairs(ctx)
	if err != nil || r.Epoch != 3 || r.Holder != "mb" || !slices.Equal(r.Locks, locks) {
		t.Fatalf("record after term 2's late clear: %+v, %v; want term 3's", r, err)
	}
	// A term older than the record's (fenced, or about to be) neither adopts nor overwrites.
	if got, rev, err := pendingRepairs(ctx, l, "ma", 2, []chunklock.Lock{old}, now); err == nil || rev != 0 || !slices.Equal(got, []chunklock.Lock{old}) {
		t.Fatalf("term 2 again: %v, rev %d, %v; want its own locks only and an error", got, rev, err)
	}
	// Term 3 settles them and clears its own record: term 4 finds nothing.
	if err := l.ClearRepairs(ctx, rev3); err != nil {
		t.Fatal(err)
	}
	if locks, rev, err := pendingRepairs(ctx, l, "ma", 4, nil, now); err != nil || len(locks) != 0 || rev != 0 {
		t.Fatalf("term 4 after term 3 settled: %v, rev %d, %v; want nothing", locks, rev, err)
	}
}
