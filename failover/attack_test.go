package failover_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/failsafe"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/secrets"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/internal/tickle"
)

// TestAttackerOnTheNetwork plays the attacker of issue 9 against a running failover cluster,
// from the client host cl (in the lab's network, not a cluster member): without credentials
// it cannot connect; a NATS server of its own, with a certificate from another CA, cannot join
// the cluster through the route port; with a stolen reader seed it can read but not publish a
// batch, delete a message, the stream or a bucket, nor put or delete the lease key; a failsafe
// hold it forges or replays gets no promise. The cluster keeps working through all of it.
func TestAttackerOnTheNetwork(t *testing.T) {
	c := newCluster(t, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	epoch := c.before(ctx, 3)
	cl := lab.HostClient

	// No credentials: the servers refuse the connection (with TLS, trusting the right CA).
	if nc, err := c.l.ConnectNATSAs(cl, "", c.urls...); err == nil {
		nc.Close()
		t.Fatal("connected to the cluster's NATS without credentials")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("no credentials: %v, want an authorization violation", err)
	}
	// No TLS at all: refused too.
	if nc, err := c.l.ConnectNATSWith(cl, c.urls); err == nil {
		nc.Close()
		t.Fatal("connected to the cluster's NATS without TLS")
	}

	// A stolen reader seed reads, and changes nothing.
	thief := connectRecording(t, c, natsconn.RoleReader)
	js, err := jetstream.New(thief.nc)
	c.must("jetstream", err)
	st, err := js.Stream(ctx, stream.StreamName(c.name))
	c.must("reader: stream info", err)
	before := st.CachedInfo().State
	if before.Msgs == 0 {
		t.Fatal("the stream is empty: nothing to attack")
	}
	forged := stream.BatchInfo{Timeline: 1, FirstVersion: before.LastSeq + 1000, LastVersion: before.LastSeq + 1000, Lines: 1}
	thief.denied(t, "publish a batch", func(ctx context.Context) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: stream.Subject(c.name, 1), Header: forged.Header(), Data: []byte("pwned")})
		return err
	})
	thief.denied(t, "delete a message", func(ctx context.Context) error { return st.DeleteMsg(ctx, before.FirstSeq) })
	thief.denied(t, "purge the stream", func(ctx context.Context) error { return st.Purge(ctx) })
	thief.denied(t, "delete the stream", func(ctx context.Context) error { return js.DeleteStream(ctx, stream.StreamName(c.name)) })
	thief.denied(t, "delete the snapshot bucket", func(ctx context.Context) error {
		return js.DeleteObjectStore(ctx, stream.SnapshotBucket(c.name))
	})
	thief.denied(t, "delete the lease bucket", func(ctx context.Context) error {
		return js.DeleteKeyValue(ctx, stream.LeaseBucket(c.name))
	})
	kv, err := js.KeyValue(ctx, stream.LeaseBucket(c.name))
	c.must("reader: lease bucket", err)
	thief.denied(t, "put the lease key", func(ctx context.Context) error {
		_, err := kv.Put(ctx, "lease", []byte(`{"state":"released","reason":"pwned"}`))
		return err
	})
	thief.denied(t, "delete the lease key", func(ctx context.Context) error { return kv.Delete(ctx, "lease") })
	thief.denied(t, "take the lease", func(ctx context.Context) error {
		l, err := failover.OpenLeaseReadOnly(ctx, js, c.name)
		if err != nil {
			return err
		}
		rec, rev, err := l.Read(ctx)
		if err != nil {
			return err
		}
		rec.Holder, rec.Epoch = "thief", 0
		_, err = l.Renew(ctx, rec, rev)
		return err
	})

	// The failsafe endpoint of mb, the member ma asks for promises: a hold that is not signed
	// by the cluster's key, or a signed one replayed, gets no promise (a promise would keep mb
	// from taking the lease). The thief's reader seed holds no signing key.
	c.waitFailsafeArmed(ctx, lab.HostMasterA)
	c.failsafeAttack(ctx, epoch)

	// A NATS server of the attacker's own on cl, routed to the three nodes, with a certificate
	// from another CA (its own `mfsha init`): it never joins.
	rogue := rogueServer(t, c, ctx)
	deadline := time.Now().Add(8 * time.Second) // its routes retry every second
	for time.Now().Before(deadline) {
		if d := rogue.DiscoveredServers(); len(d) > 0 {
			t.Fatalf("the rogue server joined the cluster: its clients learn %v", d)
		}
		rjs, _ := jetstream.New(rogue)
		qctx, qcancel := context.WithTimeout(ctx, time.Second)
		_, err := rjs.Stream(qctx, stream.StreamName(c.name))
		qcancel()
		if err == nil {
			t.Fatal("the rogue server sees the cluster's stream")
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The nodes saw it try, and refused it at the TLS handshake.
	refused := false
	for _, h := range []string{lab.HostNATS1, lab.HostNATS2, lab.HostNATS3} {
		b, _ := os.ReadFile(c.l.LogPath(h, lab.RoleNATS))
		if strings.Contains(string(b), "TLS route handshake error") {
			refused = true
		}
	}
	if !refused {
		t.Error("no NATS node logged a refused route handshake: did the rogue server try at all?")
	}

	// Nothing changed, and the cluster still works: ma holds the lease at the same epoch, the
	// stream's history is whole, and a new file reaches the standby.
	if got := c.waitMaster(ctx, lab.HostMasterA); got != epoch {
		t.Fatalf("epoch %d after the attack, want %d", got, epoch)
	}
	admin, err := c.l.ConnectNATS(cl, c.urls...)
	c.must("admin", err)
	defer admin.Close()
	ajs, err := jetstream.New(admin)
	c.must("jetstream", err)
	ast, err := ajs.Stream(ctx, stream.StreamName(c.name))
	c.must("stream", err)
	after := ast.CachedInfo().State
	if after.FirstSeq != before.FirstSeq || after.LastSeq < before.LastSeq {
		t.Fatalf("stream went from %d..%d to %d..%d", before.FirstSeq, before.LastSeq, after.FirstSeq, after.LastSeq)
	}
	for seq := after.FirstSeq; seq <= after.LastSeq; seq++ {
		m, err := ast.GetMsg(ctx, seq)
		c.must(fmt.Sprintf("stream message %d", seq), err)
		if string(m.Data) == "pwned" {
			t.Fatalf("stream message %d is the forged batch", seq)
		}
	}
	c.write(ctx, "after-attack")
	c.caughtUp(ctx, lab.HostMasterB)
	c.verify(ctx)
}

// rogueServer runs `mfsha nats` on cl with secrets of its own, routed to the cluster's
// nodes, and returns a connection to it as its own admin.
func rogueServer(t *testing.T, c *cluster, ctx context.Context) *nats.Conn {
	t.Helper()
	cl := lab.HostClient
	dir := filepath.Join(t.TempDir(), "rogue")
	addr := c.l.HostAddr(cl)
	_, err := secrets.Init(secrets.Options{Cluster: c.name, Out: dir, Hosts: []secrets.Host{{Name: cl, Addr: addr.String()}}})
	c.must("rogue secrets", err)
	var routes []string
	for _, h := range []string{lab.HostNATS1, lab.HostNATS2, lab.HostNATS3} {
		routes = append(routes, "nats-route://"+netip.AddrPortFrom(c.l.HostAddr(h), lab.PortNATSRoute).String())
	}
	client := netip.AddrPortFrom(addr, lab.PortNATSClient).String()
	argv := []string{c.bin, "nats", "--state", filepath.Join(dir, "state"), "--nats-server-name", "rogue",
		"--nats-listen", client, "--nats-cluster-name", c.name,
		"--nats-cluster-listen", netip.AddrPortFrom(addr, lab.PortNATSRoute).String(), "--nats-routes", strings.Join(routes, ","),
		"--nats-users", filepath.Join(dir, secrets.UsersFile), "--nats-ca", filepath.Join(dir, secrets.CACert),
		"--nats-server-cert", filepath.Join(dir, secrets.HostCert(cl)), "--nats-server-key", filepath.Join(dir, secrets.HostKey(cl))}
	dial := c.l.Dialer(cl)
	c.must("rogue nats", c.l.Start(ctx, lab.ProcSpec{Host: cl, Role: "rogue-nats", Argv: argv, Ready: func(ctx context.Context) error {
		conn, err := dial(ctx, "tcp", client)
		if err == nil {
			conn.Close()
		}
		return err
	}}))
	nk, err := nats.NkeyOptionFromSeed(filepath.Join(dir, secrets.SeedFile(natsconn.RoleAdmin)))
	c.must("rogue admin seed", err)
	nc, err := c.l.ConnectNATSWith(cl, []string{"nats://" + client}, nk, nats.RootCAs(filepath.Join(dir, secrets.CACert)))
	c.must("connect to the rogue server", err)
	t.Cleanup(nc.Close)
	return nc
}

// recording is a connection of one role that records the permission violations the server
// reports to it.
type recording struct {
	nc         *nats.Conn
	mu         sync.Mutex
	violations []string
}

func connectRecording(t *testing.T, c *cluster, role natsconn.Role) *recording {
	t.Helper()
	nc, err := c.l.ConnectNATSAs(lab.HostClient, role, c.urls...)
	c.must("connect as "+string(role), err)
	t.Cleanup(nc.Close)
	r := &recording{nc: nc}
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		r.mu.Lock()
		r.violations = append(r.violations, err.Error())
		r.mu.Unlock()
	})
	return r
}

// denied asserts that op fails and that the server reported a permissions violation for it.
func (r *recording) denied(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	r.mu.Lock()
	n := len(r.violations)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := op(ctx); err == nil {
		t.Errorf("%s: allowed, want denied", what)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := append([]string(nil), r.violations[n:]...)
		r.mu.Unlock()
		for _, v := range got {
			if strings.Contains(strings.ToLower(v), "permissions violation") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s: failed, but the server reported no permissions violation", what)
}

// failsafeAttack posts holds to mb's failsafe endpoint from cl: garbage, unsigned, signed by a
// key of another cluster, and a hold properly signed (the attacker recorded one) but replayed:
// each is refused, with the reason.
func (c *cluster) failsafeAttack(ctx context.Context, epoch uint64) {
	c.t.Helper()
	url := "http://" + netip.AddrPortFrom(c.l.HostAddr(lab.HostMasterB), 9482).String() + "/failsafe/hold"
	client := &http.Client{Transport: &http.Transport{DialContext: c.l.Dialer(lab.HostClient), DisableKeepAlives: true}, Timeout: 5 * time.Second}
	post := func(url string, body []byte) (int, string) {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		c.must("post to mb's failsafe endpoint", err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	hold := failsafe.Hold{Cluster: c.name, Holder: lab.HostMasterA, Epoch: epoch, Seq: 1, Hold: 3 * time.Second}
	foreign, err := sign.Generate()
	c.must("a key of the attacker's own", err)
	signed, err := failsafe.SealHold(sign.NewSigner(foreign), hold)
	c.must("seal", err)
	unsigned := bytes.Replace(signed, []byte(`"sig":"`), []byte(`"sig":"x`), 1)
	priv, _, err := c.l.SigningKeys()
	c.must("the cluster's signing key", err)
	own, err := sign.LoadSigner(priv)
	c.must("load the cluster's signing key", err)
	replayed, err := failsafe.SealHold(own, hold) // seq 1: ma's holds are far past it
	c.must("seal", err)
	for _, tc := range []struct {
		what string
		body []byte
		code int
		want string
	}{
		{"garbage", []byte("{not json"), http.StatusForbidden, "failsafe message refused"},
		{"a bad signature", unsigned, http.StatusForbidden, "failsafe message refused"},
		{"another cluster's key", signed, http.StatusForbidden, "failsafe message refused"},
		{"a replayed hold", replayed, http.StatusConflict, "replayed"},
	} {
		if code, body := post(url, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			c.t.Errorf("hold with %s: %d %q; want %d and %q", tc.what, code, body, tc.code, tc.want)
		}
	}

	// Connection lists (tickles.go): one the attacker signed, or one for another cluster, is
	// refused; mb would otherwise tickle whatever it names after a promotion.
	conns := strings.TrimSuffix(url, "/hold") + "/conns"
	list := tickle.List{Cluster: c.name, Holder: lab.HostMasterA, Epoch: epoch, Seq: 1 << 40, Conns: []tickle.Conn{
		{Local: netip.AddrPortFrom(c.l.VIP(), 9421), Remote: netip.MustParseAddrPort("10.9.9.9:40000")}}}
	forged, err := tickle.Seal(sign.NewSigner(foreign), list)
	c.must("seal a list", err)
	list.Cluster = "other"
	otherCluster, err := tickle.Seal(own, list)
	c.must("seal a list", err)
	for _, tc := range []struct {
		what, want string
		body       []byte
	}{
		{"another cluster's key", "tickle list refused", forged},
		{"the cluster's key, for another cluster", `a list for cluster "other"`, otherCluster},
	} {
		if code, body := post(conns, tc.body); code != http.StatusForbidden || !strings.Contains(body, tc.want) {
			c.t.Errorf("connection list signed with %s: %d %q; want 403 and %q", tc.what, code, body, tc.want)
		}
	}
}
