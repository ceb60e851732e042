package natsconn_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestReaderPushConsumerWritesNothing: a reader may create consumers (restore reads snapshot
// chunks through one), and the server does not check a consumer's deliver subject against its
// creator's permissions. A stolen reader seed could then try to have the server deliver one
// stream into another's subjects: the changelog into the lease key, the lease into the
// changelog. The server delivers, but no stream stores what a consumer delivers: nothing
// changes.
func TestReaderPushConsumerWritesNothing(t *testing.T) {
	s := startSecure(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node := s.connect(t, natsconn.RoleNode)
	shipLines(t, node, signtest.New(t), 50)
	lease, err := failover.OpenLease(ctx, node.js, grantsCluster, 10*time.Minute, 1)
	ok(t, "lease", err)
	rev, err := lease.Acquire(ctx, failover.LeaseRecord{Holder: "node", State: "held", Since: time.Now()}, 0)
	ok(t, "acquire", err)
	changelog, err := node.js.Stream(ctx, stream.StreamName(grantsCluster))
	ok(t, "stream", err)
	before := changelog.CachedInfo().State

	// Core subscribers on both targets (admin may listen anywhere) prove that the server does
	// deliver there: what matters is that no stream stores it.
	admin := s.connect(t, natsconn.RoleAdmin)
	var delivered atomic.Int64
	for _, subj := range []string{"$KV." + stream.LeaseBucket(grantsCluster) + ".lease", stream.Subject(grantsCluster, 1)} {
		sub, err := admin.nc.Subscribe(subj, func(*nats.Msg) { delivered.Add(1) })
		ok(t, "admin: subscribe", err)
		defer sub.Unsubscribe()
	}
	ok(t, "admin: flush", admin.nc.Flush())
	reader := s.connect(t, natsconn.RoleReader)
	for _, p := range []struct{ from, to string }{
		{stream.StreamName(grantsCluster), "$KV." + stream.LeaseBucket(grantsCluster) + ".lease"},
		{"KV_" + stream.LeaseBucket(grantsCluster), stream.Subject(grantsCluster, 1)},
	} {
		st, err := reader.js.Stream(ctx, p.from)
		ok(t, "reader: stream "+p.from, err)
		if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{DeliverSubject: p.to, AckPolicy: jetstream.AckNonePolicy}); err != nil {
			t.Logf("push consumer %s -> %s refused: %v", p.from, p.to, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries reached the subscribers, want 2: the consumers did not deliver", delivered.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec, rev2, err := lease.Read(ctx)
	if err != nil || rev2 != rev || rec.Holder != "node" {
		t.Errorf("lease: %+v at %d (%v), want node's at %d", rec, rev2, err, rev)
	}
	info, err := changelog.Info(ctx)
	ok(t, "stream info", err)
	if info.State.Msgs != before.Msgs || info.State.LastSeq != before.LastSeq {
		t.Errorf("changelog went from %d messages (last %d) to %d (last %d)", before.Msgs, before.LastSeq, info.State.Msgs, info.State.LastSeq)
	}
}
