package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/failsafe"
	"github.com/mfsha/mfsha/internal/jstest"
)

// lockedBuffer is a log sink the keeper's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestKeeperFencesWhenRenewalsStop: the NATS server stops answering (it is shut down while
// the keeper holds the lease). No renewal can say "lost" then: each one fails with a timeout
// or a dropped connection, and only the renewal deadline (RenewEvery + 2*RenewTimeout after
// the last successful renewal) makes the keeper report the loss. It must, and before the
// lease's TTL has run out from that last renewal: past it another node may hold the lease.
func TestKeeperFencesWhenRenewalsStop(t *testing.T) {
	srv, js := stoppableJetStream(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := testConfig()
	cfg.ArchiveDir, cfg.VIP = "x", mustPrefix("10.0.0.1/24")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLease(ctx, js, "c3", cfg.LeaseTTL, 1)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	rev, err := l.Acquire(ctx, LeaseRecord{Holder: "a", State: StateMaster}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := l.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	k := hold(ctx, l, cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil, nil, rec, rev, sent)
	defer k.markStopped()
	time.Sleep(3 * cfg.RenewEvery)
	select {
	case <-k.lost:
		t.Fatalf("lost while renewals work:\n%s", logs.String())
	default:
	}
	if k.lastOKTime().Equal(sent) {
		t.Fatalf("no renewal succeeded in %v:\n%s", 3*cfg.RenewEvery, logs.String())
	}

	srv.Shutdown()
	down := time.Now()
	select {
	case <-k.lost:
	case <-time.After(2 * cfg.LeaseTTL):
		t.Fatalf("renewals failing for %v were never reported as a loss:\n%s", 2*cfg.LeaseTTL, logs.String())
	}
	lostAt := time.Now()
	last := k.lastOKTime()
	t.Logf("NATS down %v after the last successful renewal; loss reported %v after it (deadline %v, TTL %v)",
		down.Sub(last).Round(time.Millisecond), lostAt.Sub(last).Round(time.Millisecond), cfg.RenewEvery+2*cfg.RenewTimeout, cfg.LeaseTTL)
	// The safety property, not a timing: the holder stops believing in its lease before the
	// lease can have expired in NATS (which counts from the last write it accepted, sent at
	// last or later). A goroutine delayed past the TTL on a loaded machine would break it.
	if !lostAt.Before(last.Add(cfg.LeaseTTL)) {
		t.Errorf("loss reported %v after the last successful renewal: not before the lease's TTL (%v)", lostAt.Sub(last), cfg.LeaseTTL)
	}
	out := logs.String()
	if !strings.Contains(out, "lease renewal failed; retrying") {
		t.Errorf("the keeper never retried a failed renewal before fencing: the deadline branch did not run:\n%s", out)
	}
	if strings.Contains(out, ErrLeaseLost.Error()) {
		t.Errorf("with NATS down the keeper saw %q: a server that does not answer cannot say the lease was taken:\n%s", ErrLeaseLost, out)
	}
	if !strings.Contains(out, "lease lost: fencing") {
		t.Errorf("no %q in the keeper's log:\n%s", "lease lost: fencing", out)
	}
}

// lastOKTime is when the last successful renewal was sent.
func (k *keeper) lastOKTime() time.Time { return time.Unix(0, k.okAt.Load()) }

// TestKeeperServesOnPromisesThenFences: with failsafe armed, a keeper whose NATS stopped
// answering keeps the lease past its renewal deadline while a member keeps promising (the
// promises are counted here without HTTP), and reports the loss once the member stops:
// within one missed round (ServeUntil), not only at the renewal deadline, and never after the
// member's last promise could end minus MASTER_STOP_TIMEOUT.
func TestKeeperServesOnPromisesThenFences(t *testing.T) {
	srv, js := stoppableJetStream(t)
	h := holdOnPromises(t, js, "c4", slog.LevelDebug)
	cfg, fs, cov, k, logs, rev := h.cfg, h.fs, h.cov, h.k, &h.logs, h.epoch

	var lastAsked time.Time
	promise := func(seq uint64) {
		lastAsked = time.Now()
		cov.Sent("b", seq, lastAsked)
		if err := cov.Answered(failsafe.Promise{Cluster: "c", Member: "b", Holder: "a", Epoch: rev, Seq: seq, Hold: fs.Hold}); err != nil {
			t.Fatal(err)
		}
	}
	promise(1)
	srv.Shutdown() // every renewal fails from now on
	down := time.Now()
	seq := uint64(2)
	for time.Since(down) < 3*(cfg.RenewEvery+2*cfg.RenewTimeout) { // well past the renewal deadline
		select {
		case <-k.lost:
			t.Fatalf("lost %v after NATS went down although the member kept promising:\n%s", time.Since(down).Round(time.Millisecond), logs.String())
		case <-time.After(fs.Every):
		}
		promise(seq)
		seq++
	}
	stopped := time.Now() // the member stops answering
	select {
	case <-k.lost:
	case <-time.After(fs.Hold):
		t.Fatalf("still serving %v after the member's last promise:\n%s", fs.Hold, logs.String())
	}
	lostAt := time.Now()
	t.Logf("served on promises %v past NATS; loss reported %v after the last answered request (ServeUntil allows %v, safety %v)",
		stopped.Sub(down).Round(time.Millisecond), lostAt.Sub(lastAsked).Round(time.Millisecond), fs.Every+2*fs.Timeout, failsafe.Covered(fs.Hold)-fs.StopTimeout)
	// The safety property: the fence starts while the member's promise still has StopTimeout
	// to run (the timing of one missed round is only logged).
	if !lostAt.Before(lastAsked.Add(failsafe.Covered(fs.Hold) - fs.StopTimeout)) {
		t.Errorf("loss reported %v after the last answered request: past %v", lostAt.Sub(lastAsked), failsafe.Covered(fs.Hold)-fs.StopTimeout)
	}
	if !strings.Contains(logs.String(), "on_promises=true") {
		t.Errorf("the keeper never said it served on promises:\n%s", logs.String())
	}
}

// stoppableJetStream starts an embedded JetStream server the test may shut down (Shutdown) to
// make every request fail, and a client that keeps trying to reconnect to it.
func stoppableJetStream(t *testing.T) (*server.Server, jetstream.JetStream) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start within 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown() // a no-op once the test shut it down
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return srv, js
}

// TestKeeperRetakesAnExpiredLeaseAtTheSameEpoch: the lease's record expires while the holder
// serves on the failsafe promises (the bucket's MaxAge runs on during a NATS election, here a
// delete stands for it). The keeper takes it again by create and the term goes on: same
// holder, same fencing epoch (the target for a NATS node's loss), no fence. A record
// someone else wrote meanwhile is never taken over: the keeper fences.
func TestKeeperRetakesAnExpiredLeaseAtTheSameEpoch(t *testing.T) {
	ctx := context.Background()
	h := holdOnPromises(t, jstest.Start(t), "c5", slog.LevelInfo)
	l, cfg, fs, cov, k, logs, epoch := h.l, h.cfg, h.fs, h.cov, h.k, &h.logs, h.epoch
	var err error
	promising := make(chan struct{})
	defer close(promising)
	go func() { // member b promises every round, as long as the test runs
		for seq := uint64(1); ; seq++ {
			cov.Sent("b", seq, time.Now())
			if err := cov.Answered(failsafe.Promise{Cluster: "c", Member: "b", Holder: "a", Epoch: epoch, Seq: seq, Hold: fs.Hold}); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-promising:
				return
			case <-time.After(fs.Every):
			}
		}
	}()
	time.Sleep(2 * cfg.RenewEvery)

	if err := l.kv.Delete(ctx, leaseKey); err != nil { // the record expires
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * cfg.RenewEvery)
	var rec LeaseRecord
	var rev uint64
	for {
		if rec, rev, err = l.Read(ctx); err == nil && rev != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired lease was not taken again within %v (%v):\n%s", 10*cfg.RenewEvery, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-k.lost:
		t.Fatalf("the keeper fenced although every member promised:\n%s", logs.String())
	case <-time.After(3 * cfg.RenewEvery): // renewals go on at the new revision
	}
	if rec, _, err = l.Read(ctx); err != nil || rec.Holder != "a" || rec.Epoch != epoch || k.epoch() != epoch {
		t.Fatalf("after the retake: %+v (%v), keeper's epoch %d; want holder a at epoch %d:\n%s", rec, err, k.epoch(), epoch, logs.String())
	}
	if !strings.Contains(logs.String(), "same epoch") {
		t.Errorf("no retake in the keeper's log:\n%s", logs.String())
	}

	// Someone else's record (as if b had taken the lease): never taken over.
	b, _ := json.Marshal(LeaseRecord{Holder: "b", State: StateMaster, Epoch: epoch + 100})
	if _, err := l.kv.Put(ctx, leaseKey, b); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.lost:
	case <-time.After(10 * cfg.RenewEvery):
		t.Fatalf("the keeper kept serving after b's record replaced its own:\n%s", logs.String())
	}
	if rec, _, err = l.Read(ctx); err != nil || rec.Holder != "b" {
		t.Fatalf("b's record was overwritten: %+v (%v)", rec, err)
	}
}

// promisedHolder is a keeper of node a with failsafe armed and one member, b, whose promises
// the test counts itself (Sent, Answered: no HTTP).
type promisedHolder struct {
	l     *Lease
	cfg   Config
	fs    failsafe.Config
	cov   *failsafe.Coverage
	k     *keeper
	logs  lockedBuffer
	epoch uint64
}

// holdOnPromises takes cluster's lease for a, as a node does (the record's epoch is the
// revision Acquire returns), and starts its keeper, logging at level; stopped when the test
// ends.
func holdOnPromises(t *testing.T, js jetstream.JetStream, cluster string, level slog.Level) *promisedHolder {
	t.Helper()
	ctx := context.Background()
	h := &promisedHolder{cfg: testConfig()}
	var err error
	if h.l, err = OpenLease(ctx, js, cluster, h.cfg.LeaseTTL, 1); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if h.epoch, err = h.l.Acquire(ctx, LeaseRecord{Holder: "a", State: StateMaster}, 0); err != nil {
		t.Fatal(err)
	}
	h.fs = failsafe.Config{Hold: 3 * time.Second, Every: 200 * time.Millisecond, Timeout: 300 * time.Millisecond, StopTimeout: h.cfg.MasterStopTimeout}
	h.cov = failsafe.NewCoverage(h.fs)
	h.cov.SetMembers([]string{"b"})
	h.k = hold(ctx, h.l, h.cfg, slog.New(slog.NewTextHandler(&h.logs, &slog.HandlerOptions{Level: level})), nil, h.cov,
		LeaseRecord{Holder: "a", State: StateMaster, Epoch: h.epoch}, h.epoch, sent)
	t.Cleanup(h.k.markStopped)
	h.k.armFailsafe()
	return h
}
