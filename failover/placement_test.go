package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
)

// placementLocal is the --nats-local-server of the node on ma: the NATS server on its host.
const placementLocal = lab.HostMasterA

// placementLogLine is what KeepLeaderOff logs when it moved the lease's leader.
const placementLogLine = "asked it to step down"

// TestLeaseLeaderOffMasterHost runs NATS on ma, mb and c1 and the master's node on ma with
// --nats-local-server ma: each time the lease stream's Raft leader is forced onto ma, the node
// moves it off (KeepLeaderOff) within a few seconds, and keeps the lease meanwhile.
func TestLeaseLeaderOffMasterHost(t *testing.T) {
	mfs := requireLab(t)
	bin := mfshaBin(t)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ma = lab.HostMasterA
	name := fmt.Sprintf("fl%04x", os.Getpid()%0x10000) // not newCluster's "fp" (TestFailoverPartitions)
	hosts := []lab.HostSpec{{Name: ma}, {Name: lab.HostMasterB}, {Name: lab.HostChunk}, {Name: lab.HostClient}}
	l, err := lab.New(lab.Config{Name: name, Dir: t.TempDir(), Hosts: hosts, StartTimeout: 30 * time.Second, MooseFS: mfs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(ha.NodeLog(l, ma))
			lines := strings.Split(string(b), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("---- %s node log (tail) ----\n%s", ma, strings.Join(lines, "\n"))
		}
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if err := l.Down(dctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("up", l.Up(ctx))
	urls, err := l.StartNATS(ctx, bin, ma, lab.HostMasterB, lab.HostChunk)
	must("NATS on ma, mb, c1", err)
	must("init ma", l.InitMaster(ma))
	extra := append([]string{"--nats-local-server", placementLocal}, nodeFlags...)
	must("node ma", ha.StartNode(ctx, l, ha.NodeSpec{Host: ma, Bin: bin, Start: "ship", Cluster: name, NATS: urls, Extra: extra}))
	lease, closeLease, err := ha.Lease(ctx, l, lab.HostClient, name, urls)
	must("lease", err)
	t.Cleanup(closeLease)
	epoch, err := ha.WaitMaster(ctx, lease, ma)
	must("ma master", err)
	t.Logf("ma is the master (epoch %d) after %v", epoch, time.Since(begin).Round(time.Millisecond))

	nc, err := l.ConnectNATS(lab.HostClient, urls...)
	must("connect NATS", err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must("JetStream", err)
	stream := lease.StreamName()
	// A client writing without pause through the master meanwhile: moving the lease's leader
	// must cost it nothing acknowledged.
	for _, h := range []string{lab.HostMasterB, lab.HostChunk} {
		must("chunkserver "+h, l.StartChunkserver(ctx, h))
	}
	_, err = l.Mount(ctx, lab.HostClient)
	must("mount on cl", err)
	w, err := ha.StartWriter(ctx, l, lab.HostClient, "writer")
	must("continuous writer on cl", err)
	t.Cleanup(func() {
		if w != nil {
			w.Stop()
		}
	})
	var moves []time.Time
	watch := watchLease(lease, ma, epoch)

	for round := 1; round <= 2; round++ {
		logged := countLogLines(t, l)
		onMA, asked, err := forceLeader(ctx, nc, js, stream, ma, 15*time.Second)
		must(fmt.Sprintf("round %d: force the leader of %s onto ma", round, stream), err)
		moves = append(moves, onMA)
		leader, err := waitLeaderOff(ctx, js, stream, ma, onMA, 15*time.Second)
		must(fmt.Sprintf("round %d: the node did not move the leader of %s off ma", round, stream), err)
		t.Logf("round %d: leader of %s forced onto ma (%d step-down requests), moved off to %s after %v", round, stream, asked, leader, time.Since(onMA).Round(time.Millisecond))
		// The node logs once its request is answered: maybe just after the new leader shows.
		deadline := time.Now().Add(3 * time.Second)
		for countLogLines(t, l) <= logged {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the leader left ma, but the node's log has no new %q (still %d)", round, placementLogLine, logged)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	res := w.Stop()
	w = nil
	if err := res.Err(); err != nil {
		t.Errorf("continuous writer: %v", err)
	}
	t.Logf("continuous writer: %d files acknowledged, %d failed writes %v; whole run: %s", len(res.Acked), res.Failures, res.FirstFailures, res.Stalls(res.Start, res.End.Sub(res.Start)))
	for i, at := range moves {
		window := res.End.Sub(at)
		if i+1 < len(moves) {
			window = moves[i+1].Sub(at)
		}
		t.Logf("writer after leader move %d: %s", i+1, res.Stalls(at, window))
	}
	must("read-back of the writer's files through a fresh mount on c1", res.Verify(ctx, l, lab.HostChunk))
	samples, readErrs, bad := watch()
	t.Logf("lease read %d times while the leader moved (%d reads failed, during elections)", samples, readErrs)
	if bad != "" {
		t.Fatalf("moving the lease's Raft leader cost the lease: %s", bad)
	}
	if samples == 0 {
		t.Fatal("the lease could not be read once while the leader moved")
	}
	r, rev, err := lease.Read(ctx)
	if err != nil || rev == 0 || r.Holder != ma || r.Epoch != epoch || r.State != failover.StateMaster {
		t.Fatalf("lease at the end: %+v (revision %d, %v); want held by ma as master at epoch %d", r, rev, err, epoch)
	}
	t.Logf("total %v", time.Since(begin).Round(time.Millisecond))
}

// countLogLines counts the node's placement log lines on ma.
func countLogLines(t *testing.T, l *lab.Lab) int {
	t.Helper()
	b, err := os.ReadFile(ha.NodeLog(l, lab.HostMasterA))
	if err != nil {
		t.Fatalf("node log: %v", err)
	}
	return strings.Count(string(b), placementLogLine)
}

// streamLeader returns the name of the server leading stream ("" while it has no leader).
func streamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s: no cluster info", stream)
	}
	return info.Cluster.Leader, nil
}

// forceLeader asks the leader of stream to step down in favour of server until server leads
// it, and returns when that was first seen and how many requests it sent.
func forceLeader(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, stream, server string, limit time.Duration) (at time.Time, asked int, err error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": server}})
	var last string
	for {
		leader, err := streamLeader(ctx, js, stream)
		if err == nil && leader == server {
			return time.Now(), asked, nil
		}
		last = fmt.Sprintf("leader %q, %v", leader, err)
		if err == nil && leader != "" {
			asked++
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			msg, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
			rcancel()
			if err != nil {
				last += fmt.Sprintf("; step-down: %v", err)
			} else {
				last += "; step-down: " + string(msg.Data)
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, asked, fmt.Errorf("%s never led it (last: %s): %w", server, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitLeaderOff waits until a server other than server leads stream, at most limit after since.
func waitLeaderOff(ctx context.Context, js jetstream.JetStream, stream, server string, since time.Time, limit time.Duration) (string, error) {
	ctx, cancel := context.WithDeadline(ctx, since.Add(limit))
	defer cancel()
	var last string
	for {
		leader, err := streamLeader(ctx, js, stream)
		if err == nil && leader != "" && leader != server {
			return leader, nil
		}
		last = fmt.Sprintf("leader %q, %v", leader, err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("still %s after %v (last: %s): %w", server, limit, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watchLease reads the lease every 100 ms until the returned function is called, which
// reports the first record not held by holder as master at epoch (bad), if any. Failed reads
// (the stream electing a leader) are only counted.
func watchLease(lease *failover.Lease, holder string, epoch uint64) func() (samples, readErrs int, bad string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var samples, readErrs int
	var bad string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			r, rev, err := lease.Read(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				readErrs++
			case rev == 0:
				if bad == "" {
					bad = fmt.Sprintf("no lease record at %s", time.Now().Format(time.RFC3339Nano))
				}
			default:
				samples++
				if (r.Holder != holder || r.Epoch != epoch || r.State != failover.StateMaster) && bad == "" {
					bad = fmt.Sprintf("lease %+v at revision %d; want held by %s as master at epoch %d", r, rev, holder, epoch)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() (int, int, string) {
		cancel()
		wg.Wait()
		return samples, readErrs, bad
	}
}
