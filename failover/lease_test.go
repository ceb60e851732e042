package failover

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/jstest"
)

func testConfig() Config {
	c := DefaultConfig()
	c.Name = "a"
	c.LeaseTTL, c.RenewEvery, c.RenewTimeout, c.MasterStopTimeout = 2*time.Second, 200*time.Millisecond, 200*time.Millisecond, time.Second
	return c
}

// TestLeaseExclusive: one holder at a time; renewals need the current revision; a released
// lease may be taken (by anyone, or only by the node it was handed to); a lease nobody renews
// disappears after the bucket's TTL.
func TestLeaseExclusive(t *testing.T) {
	js := jstest.Start(t)
	ctx := context.Background()
	l, err := OpenLease(ctx, js, "c1", time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec, rev, err := l.Read(ctx)
	if err != nil || rev != 0 || !Free(rec, rev, "a") {
		t.Fatalf("new lease: %+v rev %d err %v; want free", rec, rev, err)
	}
	ra, err := l.Acquire(ctx, LeaseRecord{Holder: "a", State: StateMaster}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ctx, LeaseRecord{Holder: "b", State: StateMaster}, 0); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second create: %v; want ErrLeaseHeld", err)
	}
	got, rev, _ := l.Read(ctx)
	if got.Holder != "a" || got.Epoch == 0 || rev != ra {
		t.Fatalf("read %+v rev %d; want holder a with its epoch at rev %d", got, rev, ra)
	}
	epoch := got.Epoch
	ra2, err := l.Renew(ctx, got, ra)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Renew(ctx, got, ra); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew with a stale revision: %v; want ErrLeaseLost", err)
	}
	got.To, got.Final = "b", 42
	if err := l.Release(ctx, got, ra2); err != nil {
		t.Fatal(err)
	}
	rel, rrev, _ := l.Read(ctx)
	if rel.State != StateReleased || rel.Final != 42 || Free(rel, rrev, "c") || !Free(rel, rrev, "b") {
		t.Fatalf("released to b: %+v; want free for b only", rel)
	}
	rb, err := l.Acquire(ctx, LeaseRecord{Holder: "b", State: StatePromoting}, rrev)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ = l.Read(ctx)
	if got.Holder != "b" || got.Epoch <= epoch {
		t.Fatalf("after b took it: %+v; want b with an epoch above %d", got, epoch)
	}
	// Nobody renews: the TTL frees it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, rev, err := l.Read(ctx)
		if err == nil && rev == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease at rev %d (taken at %d) still there 5 s after its 1 s TTL", rev, rb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := l.Acquire(ctx, LeaseRecord{Holder: "c", State: StateMaster}, 0); err != nil {
		t.Fatalf("take an expired lease: %v", err)
	}
}

// TestKeeperFencesBeforeExpiry: a holder whose lease another writer took reports the loss at
// its next renewal (the compare-and-swap fails), within RenewEvery + 2*RenewTimeout. The
// renewal-deadline branch (renewals that fail without an answer) is
// TestKeeperFencesWhenRenewalsStop's.
func TestKeeperFencesBeforeExpiry(t *testing.T) {
	js := jstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := testConfig()
	if err := func() error { cfg.ArchiveDir, cfg.VIP = "x", mustPrefix("10.0.0.1/24"); return cfg.Validate() }(); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLease(ctx, js, "c2", cfg.LeaseTTL, 1)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	rev, err := l.Acquire(ctx, LeaseRecord{Holder: "a", State: StateMaster}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := l.Read(ctx)
	k := hold(ctx, l, cfg, slog.New(slog.DiscardHandler), nil, nil, rec, rev, sent)
	time.Sleep(3 * cfg.RenewEvery)
	select {
	case <-k.lost:
		t.Fatal("lost while renewals work")
	default:
	}
	// Another writer takes over the key (as if the lease had expired and been taken): the
	// keeper must notice at its next renewal.
	for { // the keeper renews meanwhile: retry on its newer revision
		cur, crev, err := l.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = l.Renew(ctx, LeaseRecord{Holder: "intruder", State: StateMaster, Epoch: cur.Epoch}, crev); err == nil {
			break
		}
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatal(err)
		}
	}
	taken := time.Now()
	select {
	case <-k.lost:
		if d := time.Since(taken); d > cfg.RenewEvery+2*cfg.RenewTimeout {
			t.Errorf("loss noticed after %v; want within %v", d, cfg.RenewEvery+2*cfg.RenewTimeout)
		}
	case <-time.After(cfg.LeaseTTL):
		t.Fatal("a taken lease was not reported lost within the TTL")
	}
}

func TestConfigRule(t *testing.T) {
	c := testConfig()
	c.ArchiveDir, c.VIP = "/tmp/x", mustPrefix("10.0.0.100/24")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.MasterStopTimeout = 2 * time.Second // 0.2 + 0.4 + 2 > 2
	err := c.Validate()
	if err == nil || !contains(err.Error(), "LEASE_TTL") || !contains(err.Error(), "MASTER_STOP_TIMEOUT") {
		t.Fatalf("Validate: %v; want the timing rule named", err)
	}
}
