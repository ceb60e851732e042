package failover_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestFailoverLinesOnlyTheMetaloggerHas: the old master wrote lines it never shipped (its
// mfsha was stopped, then the host lost power) but mb's metalogger got them. The files they
// created survive the failover, the new master ships them before its own, and the old host
// comes back as a standby that catches up.
func TestFailoverLinesOnlyTheMetaloggerHas(t *testing.T) {
	c := newCluster(t, "u")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, off := c.failoverWithUnshippedLines(ctx)
	c.write(ctx, "on-mb")
	c.streamEpoch(ctx, e)
	c.must("ma's link back", c.l.RestoreLink(lab.HostMasterA))
	c.must("ma's metalogger", c.l.StartMetalogger(ctx, lab.HostMasterA))
	c.must("ma's node again", c.startNode(ctx, lab.HostMasterA, "ship"))
	c.caughtUp(ctx, lab.HostMasterA)
	c.verify(ctx)
	c.stopWriter(ctx, fault{"SIGSTOP of ma's node, then power-off of ma", off})
}

// failoverWithUnshippedLines: ma dies holding lines it never shipped (dieWithUnshippedLines);
// mb becomes the master with a newer epoch, every file written so far reads back, and the
// first line ma never shipped is in a batch of mb's epoch. It returns mb's epoch and when ma
// lost power.
func (c *cluster) failoverWithUnshippedLines(ctx context.Context) (uint64, time.Time) {
	c.t.Helper()
	epoch := c.before(ctx, 3)
	shipped, off := c.dieWithUnshippedLines(ctx)
	e := c.waitMaster(ctx, lab.HostMasterB)
	if e <= epoch {
		c.t.Fatalf("epoch %d after the failover, was %d", e, epoch)
	}
	c.verify(ctx)
	if b := c.batchHolding(ctx, shipped.LastVersion+1); b.Epoch != e {
		c.t.Fatalf("version %d (the first line ma never shipped) is in a batch of epoch %d; want mb's %d", shipped.LastVersion+1, b.Epoch, e)
	}
	return e, off
}

// TestFailoverLinesOnlyTheReceiverHas is TestFailoverLinesOnlyTheMetaloggerHas with the
// standbys receiving the changelog themselves (RECEIVE = VIP:9419): mb's mfsmetalogger still
// runs, but mb's node never reads it, so the files written while ma's node was stopped (never
// shipped) can reach mb only through its own receiver; verify reads each of them back.
func TestFailoverLinesOnlyTheReceiverHas(t *testing.T) {
	c := newClusterOf(t, "v", true)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, off := c.failoverWithUnshippedLines(ctx)
	c.stopWriter(ctx, fault{"SIGSTOP of ma's node, then power-off of ma", off})
}

// TestFailoverMostCaughtUpStandbyWins: two standbys, mb with a metalogger and c1 without.
// ma dies holding lines it never shipped (its node stopped, then the host powered off): only
// mb has them. c1 leaves the promotion to mb, and no acknowledged file is lost.
func TestFailoverMostCaughtUpStandbyWins(t *testing.T) {
	c := newCluster(t, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const c1 = lab.HostChunk
	c.must("node c1 (no metalogger)", c.startNode(ctx, c1, "standby"))
	epoch := c.before(ctx, 3)
	c.caughtUp(ctx, c1)
	_, off := c.dieWithUnshippedLines(ctx)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	e, err := ha.WaitMaster(wctx, c.lease, lab.HostMasterB)
	wcancel()
	c.must("mb, the standby with every line, is the master", err)
	if e <= epoch {
		t.Fatalf("epoch %d after the failover, was %d", e, epoch)
	}
	b, _ := os.ReadFile(ha.NodeLog(c.l, c1))
	if strings.Contains(string(b), "the lease is free: promoting") {
		t.Error("c1, the standby without the unshipped lines, tried to promote")
	}
	if !strings.Contains(string(b), "another standby holds more lines") {
		t.Log("c1 never saw the lease free before mb took it")
	}
	c.verify(ctx)
	c.stopWriter(ctx, fault{"SIGSTOP of ma's node, then power-off of ma", off})
}

// dieWithUnshippedLines makes ma's master write lines it never ships, then powers ma off:
// ma's node is stopped (SIGSTOP: no shipping, no renewal), files unshipped-0..2 are written
// through its still serving mfsmaster, the metaloggers get them within a second, and the
// host goes down. It returns the stream's newest batch before the power-off and when it
// happened.
func (c *cluster) dieWithUnshippedLines(ctx context.Context) (stream.BatchInfo, time.Time) {
	c.t.Helper()
	c.must("SIGSTOP ma's node", syscall.Kill(c.onlyProc(lab.HostMasterA, "mfsha"), syscall.SIGSTOP))
	for i := range 3 {
		c.write(ctx, fmt.Sprintf("unshipped-%d", i))
	}
	time.Sleep(1500 * time.Millisecond) // the metalogger flushes each second
	shipped := c.streamLast(ctx)
	off := time.Now()
	c.must("power off ma", c.l.KillHost(ctx, lab.HostMasterA))
	return shipped, off
}

// streamLast returns the header of the stream's newest batch.
func (c *cluster) streamLast(ctx context.Context) stream.BatchInfo {
	c.t.Helper()
	st := c.jsStream(ctx)
	info, err := st.Info(ctx)
	c.must("stream info", err)
	m, err := st.GetMsg(ctx, info.State.LastSeq)
	c.must("newest batch", err)
	b, err := stream.ParseBatchHeader(m.Header)
	c.must("newest batch header", err)
	return b
}

// batchHolding returns the header of the newest batch holding version v.
func (c *cluster) batchHolding(ctx context.Context, v uint64) stream.BatchInfo {
	c.t.Helper()
	st := c.jsStream(ctx)
	info, err := st.Info(ctx)
	c.must("stream info", err)
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0; seq-- {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // a snapshot or lease subject, or purged
		}
		if b, err := stream.ParseBatchHeader(m.Header); err == nil && b.FirstVersion <= v && v <= b.LastVersion {
			return b
		}
	}
	c.t.Fatalf("no batch in the stream holds version %d", v)
	return stream.BatchInfo{}
}

func (c *cluster) jsStream(ctx context.Context) jetstream.Stream {
	c.t.Helper()
	nc, err := c.l.ConnectNATS(lab.HostClient, c.urls...)
	c.must("connect", err)
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	c.must("jetstream", err)
	st, err := js.Stream(ctx, stream.StreamName(c.name))
	c.must("stream", err)
	return st
}
