package natsconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/secrets"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

const grantsCluster = "perm"

// secureServer makes a cluster's secrets with the real `mfsha init` code and starts an
// embedded server with them on loopback (TLS and nkey users as beyond loopback).
type secureServer struct {
	dir string
	url string
}

func startSecure(t *testing.T) secureServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	if _, err := secrets.Init(secrets.Options{Cluster: grantsCluster, Out: dir, Hosts: []secrets.Host{{Name: "s1", Addr: "127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	srv, err := natsconn.StartEmbedded(natsconn.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "s1",
		Security: natsconn.ServerSecurity{Users: filepath.Join(dir, secrets.UsersFile), Cert: filepath.Join(dir, secrets.HostCert("s1")),
			Key: filepath.Join(dir, secrets.HostKey("s1")), CA: filepath.Join(dir, secrets.CACert)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return secureServer{dir: dir, url: srv.ClientURL()}
}

// roleConn is a client of one role, connected as mfsha connects (natsconn.Connect), that
// records the permission violations the server reports.
type roleConn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu         sync.Mutex
	violations []string
}

func (s secureServer) connect(t *testing.T, role natsconn.Role) *roleConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsconn.Connect(ctx, natsconn.Options{URLs: []string{s.url}, NKey: filepath.Join(s.dir, secrets.SeedFile(role)),
		TLSCA: filepath.Join(s.dir, secrets.CACert), Name: string(role)}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	c := &roleConn{nc: nc}
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.violations = append(c.violations, err.Error())
		c.mu.Unlock()
	})
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return c
}

// denied asserts that op fails and that the server reported a permission violation.
func (c *roleConn) denied(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	c.mu.Lock()
	before := len(c.violations)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := op(ctx); err == nil {
		t.Errorf("%s: allowed, want denied", what)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		got := c.violations[before:]
		c.mu.Unlock()
		for _, v := range got {
			if strings.Contains(strings.ToLower(v), "permissions violation") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: failed, but the server reported no permissions violation (got %q)", what, got)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// metadataFile writes a small file that passes metafile's checks, of the given version.
func metadataFile(t *testing.T, dir string, version uint64) string {
	t.Helper()
	b := binary.BigEndian.AppendUint64([]byte(metafile.Signature), version)
	b = append(b, bytes.Repeat([]byte{7}, 4096)...)
	b = append(b, metafile.EOFMarker...)
	p := filepath.Join(dir, fmt.Sprintf("metadata.%d.mfs", version))
	ok(t, "write metadata", os.WriteFile(p, b, 0o644))
	return p
}

// shipLines runs the real shipper as c until the stream holds version last.
func shipLines(t *testing.T, c *roleConn, keys signtest.Keys, last uint64) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for v := uint64(1); v <= last; v++ {
		fmt.Fprintf(&b, "%d: %d|ACQUIRE(1,%d)\n", v, 1700000000+v, v+1)
	}
	ok(t, "changelog", os.WriteFile(filepath.Join(dir, "changelog.0.mfs"), []byte(b.String()), 0o644))
	cfg := shipper.DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Retention = dir, shipper.KindMaster, grantsCluster, 0
	cfg.Poll, cfg.RetryWait, cfg.MaxBatchBytes = 50*time.Millisecond, 100*time.Millisecond, 4096
	cfg.Signer = keys.Signer
	sh, err := shipper.New(cfg, c.js, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ok(t, "shipper", err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tls, err := stream.Timelines(context.Background(), c.js, grantsCluster)
		if err == nil && len(tls) == 1 && tls[0].LastVersion == last {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("shipper stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream did not reach version %d: %v %v", last, tls, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRoleGrants runs mfsha's own JetStream calls as each role against a real server with
// the permissions `mfsha init` sets up: what a role needs works, the rest is refused by the
// server and changes nothing.
func TestRoleGrants(t *testing.T) {
	s := startSecure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node := s.connect(t, natsconn.RoleNode)
	keys := signtest.New(t) // the cluster's signing key

	// node: ship, upload and manage snapshots, hold the lease, purge for retention.
	shipLines(t, node, keys, 300)
	store, err := snapshot.Open(ctx, node.js, grantsCluster, 1)
	ok(t, "node: snapshot.Open creates the bucket", err)
	store = store.WithSigner(keys.Signer)
	work := t.TempDir()
	snap1, err := store.Upload(ctx, metadataFile(t, work, 100), snapshot.Info{Timeline: 1, Time: 1700000100, Source: "node"})
	ok(t, "node: upload", err)
	snap2, err := store.Upload(ctx, metadataFile(t, work, 200), snapshot.Info{Timeline: 1, Time: 1700000200, Source: "node"})
	ok(t, "node: upload", err)
	ok(t, "node: delete snapshot", store.Delete(ctx, snap1.Name))
	_, err = store.PurgeOrphans(ctx, 0)
	ok(t, "node: purge orphans", err)
	lease, err := failover.OpenLease(ctx, node.js, grantsCluster, 10*time.Minute, 1)
	ok(t, "node: open lease", err)
	rec := failover.LeaseRecord{Holder: "node", State: "held", Since: time.Now()}
	rev, err := lease.Acquire(ctx, rec, 0)
	ok(t, "node: acquire", err)
	rev, err = lease.Renew(ctx, rec, rev)
	ok(t, "node: renew", err)
	ok(t, "node: put node", lease.PutNode(ctx, failover.NodeStatus{Name: "node", Role: "master", Version: 300, Updated: time.Now()}))
	ok(t, "node: write failsafe members", lease.WriteMembers(ctx, failover.MembersRecord{Holder: "node", Epoch: rev, Members: []failover.Member{{Name: "node"}}}))
	if m, found, err := lease.Members(ctx); err != nil || !found || !m.Lists("node") {
		t.Errorf("node: read failsafe members: %+v found %v, %v", m, found, err)
	}
	ok(t, "node: switchover request", lease.RequestSwitchover(ctx, "other", rev))
	_, _, err = lease.Switchover(ctx)
	ok(t, "node: read switchover", err)
	ok(t, "node: clear switchover", lease.ClearSwitchover(ctx))
	st, err := node.js.Stream(ctx, stream.StreamName(grantsCluster))
	ok(t, "node: stream", err)
	ok(t, "node: retention purge", st.Purge(ctx, jetstream.WithPurgeSequence(2)))

	// Nobody but admin deletes a message, a stream or a bucket.
	node.denied(t, "node: delete message", func(ctx context.Context) error { return st.DeleteMsg(ctx, 2) })
	node.denied(t, "node: delete stream", func(ctx context.Context) error {
		return node.js.DeleteStream(ctx, stream.StreamName(grantsCluster))
	})
	node.denied(t, "node: delete snapshot bucket", func(ctx context.Context) error {
		return node.js.DeleteObjectStore(ctx, stream.SnapshotBucket(grantsCluster))
	})
	node.denied(t, "node: delete lease bucket", func(ctx context.Context) error {
		return node.js.DeleteKeyValue(ctx, stream.LeaseBucket(grantsCluster))
	})
	node.denied(t, "node: change the changelog's limits", func(ctx context.Context) error {
		cfg := st.CachedInfo().Config
		cfg.MaxAge = time.Second
		_, err := node.js.UpdateStream(ctx, cfg)
		return err
	})
	node.denied(t, "node: another cluster's stream", func(ctx context.Context) error {
		_, err := node.js.Publish(ctx, "mfsha.other.log.1", []byte("x"))
		return err
	})

	t.Run("readers", func(t *testing.T) {
		for _, role := range []natsconn.Role{natsconn.RoleStandby, natsconn.RoleReader} {
			t.Run(string(role), func(t *testing.T) {
				t.Parallel()
				readerGrants(t, ctx, s, role, keys, snap2.Name)
			})
		}
	})

	// Nothing the readers tried changed anything.

	rl, err := failover.OpenLeaseReadOnly(ctx, node.js, grantsCluster)
	ok(t, "lease", err)
	if got, gotRev, err := rl.Read(ctx); err != nil || got.Holder != "node" || gotRev != rev {
		t.Errorf("lease after the readers: %+v rev %d (%v), want node's at %d", got, gotRev, err, rev)
	}

	// Admin may delete.
	admin := s.connect(t, natsconn.RoleAdmin)
	ast, err := admin.js.Stream(ctx, stream.StreamName(grantsCluster))
	ok(t, "admin: stream", err)
	ok(t, "admin: delete message", ast.DeleteMsg(ctx, 2))
	ok(t, "admin: delete stream", admin.js.DeleteStream(ctx, stream.StreamName(grantsCluster)))
	ok(t, "admin: delete lease bucket", admin.js.DeleteKeyValue(ctx, stream.LeaseBucket(grantsCluster)))
	if err := admin.js.DeleteObjectStore(ctx, stream.SnapshotBucket(grantsCluster)); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("admin: delete snapshot bucket: %v", err)
	}
}

// readerGrants checks that role reads what restore, standby and status read, and writes
// nothing.
func readerGrants(t *testing.T, ctx context.Context, s secureServer, role natsconn.Role, keys signtest.Keys, snapName string) {
	c := s.connect(t, role)
	// Reads, as restore, standby and status make them.
	tls, err := stream.Timelines(ctx, c.js, grantsCluster)
	ok(t, "timelines", err)
	if len(tls) != 1 || tls[0].LastVersion != 300 {
		t.Fatalf("timelines %+v, want one up to 300", tls)
	}
	_, err = restorer.LineHash(ctx, c.js, keys.Verifier, grantsCluster, tls[0], 250)
	ok(t, "line hash (seek and read a batch)", err)
	rs, err := snapshot.Open(ctx, c.js, grantsCluster, 1)
	ok(t, "open snapshots", err)
	// Even holding the signing key (stolen with the credential), a reader cannot write.
	rs = rs.WithVerifier(keys.Verifier).WithSigner(keys.Signer)
	snaps, err := rs.List(ctx)
	ok(t, "list snapshots", err)
	if len(snaps) != 1 || snaps[0].Name != snapName {
		t.Fatalf("snapshots %+v, want %s", snaps, snapName)
	}
	var buf bytes.Buffer
	_, err = rs.Download(ctx, snapName, &buf, nil)
	ok(t, "download snapshot", err)
	rl, err := failover.OpenLeaseReadOnly(ctx, c.js, grantsCluster)
	ok(t, "open lease", err)
	got, _, err := rl.Read(ctx)
	ok(t, "read lease", err)
	if got.Holder != "node" {
		t.Fatalf("lease holder %q, want node", got.Holder)
	}
	nodes, err := rl.Nodes(ctx)
	ok(t, "list nodes", err)
	if len(nodes) != 1 {
		t.Fatalf("nodes %+v, want one", nodes)
	}

	// Everything that writes is refused.
	c.denied(t, "publish a batch", func(ctx context.Context) error {
		_, err := c.js.Publish(ctx, stream.Subject(grantsCluster, 1), []byte("pwned"))
		return err
	})
	c.denied(t, "upload a snapshot", func(ctx context.Context) error {
		_, err := rs.Upload(ctx, metadataFile(t, t.TempDir(), 999), snapshot.Info{Timeline: 1, Time: 1700000999, Source: "x"})
		return err
	})
	c.denied(t, "delete a snapshot", func(ctx context.Context) error { return rs.Delete(ctx, snapName) })
	c.denied(t, "take the lease", func(ctx context.Context) error {
		_, err := rl.Acquire(ctx, failover.LeaseRecord{Holder: "thief", State: "held", Since: time.Now()}, 0)
		return err
	})
	c.denied(t, "put the lease key", func(ctx context.Context) error {
		kv, err := c.js.KeyValue(ctx, stream.LeaseBucket(grantsCluster))
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, "lease", []byte(`{"state":"released"}`))
		return err
	})
	c.denied(t, "delete the lease key", func(ctx context.Context) error {
		kv, err := c.js.KeyValue(ctx, stream.LeaseBucket(grantsCluster))
		if err != nil {
			return err
		}
		return kv.Delete(ctx, "lease")
	})
	c.denied(t, "purge the stream", func(ctx context.Context) error {
		st, err := c.js.Stream(ctx, stream.StreamName(grantsCluster))
		if err != nil {
			return err
		}
		return st.Purge(ctx)
	})
	c.denied(t, "delete a message", func(ctx context.Context) error {
		st, err := c.js.Stream(ctx, stream.StreamName(grantsCluster))
		if err != nil {
			return err
		}
		return st.DeleteMsg(ctx, 2)
	})
	c.denied(t, "delete the stream", func(ctx context.Context) error {
		return c.js.DeleteStream(ctx, stream.StreamName(grantsCluster))
	})
	c.denied(t, "delete the lease bucket", func(ctx context.Context) error {
		return c.js.DeleteKeyValue(ctx, stream.LeaseBucket(grantsCluster))
	})
	c.denied(t, "create a stream", func(ctx context.Context) error {
		_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
		return err
	})
	c.denied(t, "listen to another client's replies", func(ctx context.Context) error {
		sub, err := c.nc.SubscribeSync("_INBOX.>")
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		if err := c.nc.FlushWithContext(ctx); err != nil {
			return err
		}
		_, err = sub.NextMsgWithContext(ctx)
		return err
	})
}
