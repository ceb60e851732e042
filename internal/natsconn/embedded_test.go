package natsconn_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/secrets"
)

func TestRefusesBeyondLoopbackWithoutSecrets(t *testing.T) {
	_, err := natsconn.StartEmbedded(natsconn.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "0.0.0.0:-1"})
	if !errors.Is(err, natsconn.ErrInsecure) {
		t.Fatalf("got %v, want ErrInsecure", err)
	}
	for _, want := range []string{"NATS_USERS", "NATS_SERVER_CERT", "NATS_SERVER_KEY", "mfsha init", "0.0.0.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// Routes beyond loopback need the CA, even when clients are secured.
	dir := initSecrets(t, "a")
	sec := security(dir, "a")
	sec.CA = ""
	_, err = natsconn.StartEmbedded(natsconn.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "a",
		ClusterAt: "0.0.0.0:-1", Routes: []string{"nats-route://127.0.0.1:1"}, Security: sec})
	if !errors.Is(err, natsconn.ErrInsecure) || !strings.Contains(err.Error(), "NATS_CA") {
		t.Fatalf("routes without NATS_CA: %v, want ErrInsecure naming NATS_CA", err)
	}
}

func initSecrets(t *testing.T, hosts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	var hs []secrets.Host
	for _, h := range hosts {
		hs = append(hs, secrets.Host{Name: h, Addr: "127.0.0.1"})
	}
	if _, err := secrets.Init(secrets.Options{Cluster: grantsCluster, Out: dir, Hosts: hs}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func security(dir, host string) natsconn.ServerSecurity {
	return natsconn.ServerSecurity{Users: filepath.Join(dir, secrets.UsersFile), Cert: filepath.Join(dir, secrets.HostCert(host)),
		Key: filepath.Join(dir, secrets.HostKey(host)), CA: filepath.Join(dir, secrets.CACert)}
}

func TestClientsNeedTheirCredentials(t *testing.T) {
	s := startSecure(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	other := initSecrets(t, "x") // another cluster's secrets
	for _, tc := range []struct {
		name string
		o    natsconn.Options
	}{
		{"no credentials", natsconn.Options{URLs: []string{s.url}, TLSCA: filepath.Join(s.dir, secrets.CACert)}},
		{"another cluster's seed", natsconn.Options{URLs: []string{s.url}, TLSCA: filepath.Join(s.dir, secrets.CACert), NKey: filepath.Join(other, "node.nk")}},
		{"another CA", natsconn.Options{URLs: []string{s.url}, TLSCA: filepath.Join(other, secrets.CACert), NKey: filepath.Join(s.dir, "node.nk")}},
		{"no CA", natsconn.Options{URLs: []string{s.url}, NKey: filepath.Join(s.dir, "node.nk")}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		nc, err := natsconn.Connect(ctx, tc.o, log)
		cancel()
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", tc.name)
			continue
		}
		// Refused at once, with the setting to check: no retrying what cannot work.
		if want := map[bool]string{true: "NATS_TLS_CA", false: "NATS_NKEY"}[strings.Contains(tc.name, "CA")]; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, want)
		}
	}
}

// TestRoutesNeedTheClusterCA: two servers with certificates of the cluster CA form a route;
// a server whose certificate another CA signed cannot join either of them.
func TestRoutesNeedTheClusterCA(t *testing.T) {
	dir := initSecrets(t, "a", "b")
	foreign := initSecrets(t, "c")
	start := func(name string, sec natsconn.ServerSecurity, routes ...string) *server.Server {
		t.Helper()
		srv, err := natsconn.StartEmbedded(natsconn.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: name,
			Cluster: "mfsha", ClusterAt: "127.0.0.1:-1", Routes: routes, Security: sec})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		return srv
	}
	a := start("a", security(dir, "a"), "nats-route://127.0.0.1:1") // no peer yet
	routeA := "nats-route://" + a.ClusterAddr().String()
	c := start("c", security(foreign, "c"), routeA)
	b := start("b", security(dir, "b"), routeA)
	deadline := time.Now().Add(20 * time.Second)
	for b.NumRoutes() == 0 || a.NumRoutes() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a and b (same CA) did not connect: routes a=%d b=%d", a.NumRoutes(), b.NumRoutes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// c started before b and retries every second: by now it has tried more than once.
	time.Sleep(2 * time.Second)
	if n := c.NumRoutes(); n != 0 {
		t.Errorf("the foreign server has %d routes, want 0", n)
	}
	for _, r := range routeNames(t, a) {
		if r == "c" {
			t.Errorf("a has a route to the foreign server c")
		}
	}
}

func routeNames(t *testing.T, s *server.Server) []string {
	t.Helper()
	rz, err := s.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rz.Routes {
		names = append(names, r.RemoteName)
	}
	return names
}
