package shipper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/stream"
)

const testCluster = "t"

// testNATS is an embedded JetStream server for one test.
type testNATS struct {
	srv   *server.Server
	opts  *server.Options
	nc    *nats.Conn
	js    jetstream.JetStream
	store string
	keys  signtest.Keys // the cluster's signing key: shippers sign with it, checks verify
}

func startNATS(t *testing.T) *testNATS {
	t.Helper()
	n := &testNATS{store: t.TempDir(), keys: signtest.New(t)}
	n.opts = &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: n.store, NoLog: true, NoSigs: true}
	n.start(t)
	nc, err := nats.Connect(n.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	n.nc = nc
	n.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	})
	return n
}

func (n *testNATS) start(t *testing.T) {
	t.Helper()
	srv, err := server.NewServer(n.opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	n.srv = srv
	if n.opts.Port == -1 { // keep the port, so a restarted server is found by the clients
		n.opts.Port = srv.Addr().(*net.TCPAddr).Port
	}
}

// line makes a realistic changelog line of version v.
func line(v uint64, ts int64) string {
	switch v % 4 {
	case 0:
		return fmt.Sprintf("%d: %d|CREATE(1,file%%2C%d.txt,1,420,18,0,0,0):%d", v, ts, v, v+1)
	case 1:
		return fmt.Sprintf("%d: %d|ACQUIRE(1,%d)", v, ts, v+1)
	case 2:
		return fmt.Sprintf("%d: %d|WRITE(%d,0,1,0):%d", v, ts, v, 100+v)
	}
	return fmt.Sprintf("%d: %d|LENGTH(%d,%d,0)", v, ts, v, v*4096)
}

// lines makes versions from..to, each ending in '\n'.
func lines(from, to uint64) string { return linesAt(from, to, 1700000000) }

// linesAt makes lines timed from base: a later timeline's lines differ from the old ones'.
func linesAt(from, to uint64, base int64) string {
	var b strings.Builder
	for v := from; v <= to; v++ {
		b.WriteString(line(v, base+int64(v/10)))
		b.WriteByte('\n')
	}
	return b.String()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, text); err != nil {
		t.Fatal(err)
	}
}

// running is a shipper started by a test.
type running struct {
	sh     *Shipper
	cancel context.CancelFunc
	done   chan error
}

func startShipper(t *testing.T, n *testNATS, dir string, kind Kind) *running {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster = dir, kind, testCluster
	cfg.Poll, cfg.RetryWait = 50*time.Millisecond, 100*time.Millisecond
	cfg.MaxBatchBytes = 16 << 10 // many batches even in small tests
	return startConfigured(t, n, cfg)
}

func startConfigured(t *testing.T, n *testNATS, cfg Config) *running {
	t.Helper()
	if cfg.Signer == nil {
		cfg.Signer = n.keys.Signer
	}
	sh, err := New(cfg, n.js, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{sh: sh, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sh.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the shipper and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("shipper did not stop")
	}
	return nil
}

// waitErr waits for Run to return by itself.
func (r *running) waitErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		close(r.done)
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("shipper did not stop by itself")
	}
	return nil
}

// waitShipped waits until the shipper's acknowledged position reaches timeline tl, version v.
func waitShipped(t *testing.T, r *running, tl, v uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p := r.sh.Shipped()
		if p.Timeline == tl && p.Next == v+1 {
			return
		}
		select {
		case err := <-r.done:
			close(r.done)
			t.Fatalf("shipper stopped before timeline %d version %d: %v", tl, v, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("timeline %d version %d not shipped; shipper is at %+v", tl, v, r.sh.Shipped())
}

// streamContent reads the whole stream back: per timeline, the concatenated lines, checking
// that every batch decodes and continues the previous one of its timeline.
func streamContent(t *testing.T, n *testNATS) map[uint64]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := n.js.Stream(ctx, stream.StreamName(testCluster))
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := stream.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out := map[uint64]string{}
	last := map[uint64]uint64{}
	for seq := si.State.FirstSeq; seq <= si.State.LastSeq && si.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.VerifyBatch(n.keys.Verifier, seq, m.Subject, m.Header, m.Data); err != nil {
			t.Fatal(err)
		}
		info, body, err := dec.Decode(seq, m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := last[info.Timeline]; ok && info.FirstVersion != l+1 && info.BridgedFrom != l+1 {
			t.Fatalf("timeline %d: batch %d starts at %d after %d", info.Timeline, seq, info.FirstVersion, l)
		}
		last[info.Timeline] = info.LastVersion
		out[info.Timeline] += string(body)
	}
	return out
}

func checkStream(t *testing.T, n *testNATS, want map[uint64]string) {
	t.Helper()
	got := streamContent(t, n)
	for tl, w := range want {
		if got[tl] != w {
			t.Errorf("timeline %d: stream holds %d bytes (%s), want %d bytes (%s)", tl, len(got[tl]), summary(got[tl]), len(w), summary(w))
		}
	}
	for tl := range got {
		if _, ok := want[tl]; !ok {
			t.Errorf("unexpected timeline %d in the stream: %s", tl, summary(got[tl]))
		}
	}
}

func summary(s string) string {
	ls := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(ls) == 0 || s == "" {
		return "empty"
	}
	return fmt.Sprintf("%d lines, %q .. %q", len(ls), ls[0], ls[len(ls)-1])
}

func masterDir(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}

func logPath(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf("changelog.%d.mfs", n)) }
