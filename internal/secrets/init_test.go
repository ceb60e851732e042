package secrets

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/sign"
)

var threeHosts = []Host{{"n1", "10.0.0.1"}, {"n2", "10.0.0.2"}, {"n3", "nats3.example"}}

func TestInitFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "secrets")
	names, err := Init(Options{Cluster: "prod", Out: out, Hosts: threeHosts})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(names), 26; got != want {
		t.Errorf("%d files, want %d: %v", got, want, names)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("--out mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	secret := map[string]bool{CAKey: true, sign.PrivateFile: true}
	for _, h := range threeHosts {
		secret[HostKey(h.Name)] = true
	}
	for _, r := range natsconn.Roles {
		secret[SeedFile(r)] = true
	}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if secret[n] {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", n, fi.Mode().Perm(), want)
		}
	}

	// The signing key pair is in internal/sign's format.
	priv, err := sign.LoadPrivate(filepath.Join(out, sign.PrivateFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublic(filepath.Join(out, sign.PublicFile))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Error("signing.pub is not signing.key's public key")
	}

	// Each seed is the user named in nats-users.cfg for its role.
	users, err := natsconn.LoadUsers(filepath.Join(out, UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	if users.Cluster != "prod" {
		t.Errorf("users cluster %q", users.Cluster)
	}
	for _, r := range natsconn.Roles {
		seed, err := os.ReadFile(filepath.Join(out, SeedFile(r)))
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
		if err != nil {
			t.Fatalf("%s: %v", SeedFile(r), err)
		}
		if p, _ := kp.PublicKey(); p != users.Keys[r] {
			t.Errorf("%s: public key %s, nats-users.cfg has %s", r, p, users.Keys[r])
		}
	}

	// Every server certificate chains to the CA, under the host's name and address, for both
	// ends of a route.
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(out, CACert))
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt: no certificate")
	}
	for _, h := range threeHosts {
		b, _ := os.ReadFile(filepath.Join(out, HostCert(h.Name)))
		blk, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{h.Name, h.Addr, "127.0.0.1"} {
			for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
					t.Errorf("%s as %s (usage %v): %v", HostCert(h.Name), name, use, err)
				}
			}
		}
	}

	// nats-server accepts the configuration written for it.
	for _, h := range threeHosts {
		if _, err := server.ProcessConfigFile(filepath.Join(out, HostServerConf(h.Name))); err != nil {
			t.Errorf("%s: %v", HostServerConf(h.Name), err)
		}
	}
}

// TestInitConfigsUseKnownKeys loads each configuration file with the settings of the command
// it is for: an unknown key would be an error there.
func TestInitConfigsUseKnownKeys(t *testing.T) {
	out := t.TempDir()
	if _, err := Init(Options{Cluster: "prod", Out: out, Path: "/etc/mfs/mfsha", Hosts: threeHosts}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, ShipConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NATS_NKEY = /etc/mfs/mfsha/node.nk", "NATS_TLS_CA = /etc/mfs/mfsha/ca.crt", "REPLICAS = 3",
		"NATS_URL = nats://10.0.0.1:4222, nats://10.0.0.2:4222, nats://nats3.example:4222"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("ship.cfg lacks %q:\n%s", want, b)
		}
	}
	n1, err := os.ReadFile(filepath.Join(out, HostConfig("n1")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NATS_ROUTES = nats-route://10.0.0.2:6222, nats-route://nats3.example:6222", "NATS_USERS = /etc/mfs/mfsha/nats-users.cfg",
		"NATS_SERVER_CERT = /etc/mfs/mfsha/nats-n1.crt", "NATS_CA = /etc/mfs/mfsha/ca.crt"} {
		if !strings.Contains(string(n1), want) {
			t.Errorf("nats-n1.cfg lacks %q:\n%s", want, n1)
		}
	}
	// Each file parses as KEY = value with only the keys listed for it.
	known := map[string][]string{
		HostConfig("n1"): {"NATS_SERVER_NAME", "NATS_LISTEN", "NATS_CLUSTER_NAME", "NATS_CLUSTER_LISTEN", "NATS_ROUTES", "STATE_PATH", "NATS_USERS", "NATS_SERVER_CERT", "NATS_SERVER_KEY", "NATS_CA"},
		ShipConfig:       {"CLUSTER", "NATS_URL", "NATS_NKEY", "NATS_TLS_CA", "REPLICAS", "DATA_PATH", "STATE_PATH", "SIGNING_KEY", "TRUSTED_KEYS"},
		StandbyCfg:       {"CLUSTER", "NATS_URL", "NATS_NKEY", "NATS_TLS_CA", "DATA_PATH", "TRUSTED_KEYS"},
		RestoreCfg:       {"CLUSTER", "NATS_URL", "NATS_NKEY", "NATS_TLS_CA", "TRUSTED_KEYS"},
		AdminConfig:      {"CLUSTER", "NATS_URL", "NATS_NKEY", "NATS_TLS_CA"},
		StatusCfg:        {"CLUSTER", "NATS_URL", "NATS_NKEY", "NATS_TLS_CA"},
	}
	for name, keys := range known {
		s := config.New("test", "")
		vals := make([]string, len(keys))
		for i, k := range keys {
			s.String(&vals[i], strings.ToLower(k), k, "", "")
		}
		if err := s.Parse([]string{"--config", filepath.Join(out, name)}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for i, v := range vals {
			if v == "" {
				t.Errorf("%s: %s not set", name, keys[i])
			}
		}
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	out := t.TempDir()
	o := Options{Cluster: "prod", Out: out, Hosts: threeHosts[:1]}
	if _, err := Init(o); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, SeedFile(natsconn.RoleNode)))
	_, err := Init(o)
	if err == nil || !strings.Contains(err.Error(), "node.nk") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second init: %v, want a refusal naming node.nk and --force", err)
	}
	after, _ := os.ReadFile(filepath.Join(out, SeedFile(natsconn.RoleNode)))
	if string(before) != string(after) {
		t.Fatal("node.nk changed by a refused init")
	}
	o.Force = true
	if _, err := Init(o); err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(filepath.Join(out, SeedFile(natsconn.RoleNode)))
	if string(before) == string(after) {
		t.Fatal("--force kept the old node.nk")
	}
}

func TestParseHosts(t *testing.T) {
	h, err := ParseHosts([]string{"n1=10.0.0.1", " n2=nats2.example"})
	if err != nil || len(h) != 2 || h[1] != (Host{"n2", "nats2.example"}) {
		t.Fatalf("got %v, %v", h, err)
	}
	for _, bad := range []string{"n1", "n1=", "n.1=10.0.0.1", "n1=10.0.0.1:4222"} {
		if _, err := ParseHosts([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v, want an error naming it", bad, err)
		}
	}
	if _, err := ParseHosts([]string{"n1=a", "n1=b"}); err == nil {
		t.Error("a name given twice was accepted")
	}
}

// TestServerConfMatchesEmbedded: the nats-server configuration grants each user exactly what
// mfsha's own servers grant it, with TLS for clients and mutual TLS for routes.
func TestServerConfMatchesEmbedded(t *testing.T) {
	out := t.TempDir()
	if _, err := Init(Options{Cluster: "prod", Out: out, Hosts: threeHosts}); err != nil {
		t.Fatal(err)
	}
	users, err := natsconn.LoadUsers(filepath.Join(out, UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*server.Permissions{}
	for _, u := range natsconn.NkeyUsers(users) {
		want[u.Nkey] = u.Permissions
	}
	opts, err := server.ProcessConfigFile(filepath.Join(out, HostServerConf("n1")))
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Nkeys) != len(want) {
		t.Fatalf("%d users in the conf, want %d", len(opts.Nkeys), len(want))
	}
	for _, u := range opts.Nkeys {
		w, ok := want[u.Nkey]
		if !ok {
			t.Fatalf("user %s is not in nats-users.cfg", u.Nkey)
		}
		if (w == nil) != (u.Permissions == nil) {
			t.Fatalf("user %s: permissions %+v, want %+v", u.Nkey, u.Permissions, w)
		}
		if w == nil {
			continue
		}
		for _, pair := range [][2][]string{
			{u.Permissions.Publish.Allow, w.Publish.Allow},
			{u.Permissions.Publish.Deny, w.Publish.Deny},
			{u.Permissions.Subscribe.Allow, w.Subscribe.Allow},
		} {
			if strings.Join(pair[0], " ") != strings.Join(pair[1], " ") {
				t.Errorf("user %s: conf grants %v, embedded %v", u.Nkey, pair[0], pair[1])
			}
		}
	}
	if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientCAs == nil {
		t.Errorf("TLS: clients %v, routes %v: want both, routes verified against the CA", opts.TLSConfig != nil, opts.Cluster.TLSConfig != nil)
	}
	if len(opts.Routes) != 2 {
		t.Errorf("routes %v, want the two other hosts", opts.Routes)
	}
}
