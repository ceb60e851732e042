package secrets

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/sign"
)

// The configuration files Init writes: MooseFS style (KEY = value), every path filled in,
// only keys the command knows (an unknown key is an error). Other settings keep their
// defaults; deploy/mfsha-*.cfg document them all.

func (o Options) path(name string) string { return filepath.Join(o.Path, name) }

func (o Options) natsURLs() string {
	var u []string
	for _, h := range o.Hosts {
		u = append(u, "nats://"+net.JoinHostPort(h.Addr, strconv.Itoa(ClientPort)))
	}
	return strings.Join(u, ", ")
}

// replicas is the stream and bucket replication: 3 with three NATS servers or more.
func (o Options) replicas() int { return min(3, len(o.Hosts)) }

func header(b *bytes.Buffer, o Options, what string) {
	fmt.Fprintf(b, "# %s\n# Written by `mfsha init --cluster %s`; the files it names are in %s.\n\n", what, o.Cluster, o.Path)
}

// client writes the settings every client of the cluster shares, as role.
func client(b *bytes.Buffer, o Options, role natsconn.Role) {
	fmt.Fprintf(b, "CLUSTER = %s\n", o.Cluster)
	fmt.Fprintf(b, "NATS_URL = %s\n", o.natsURLs())
	fmt.Fprintf(b, "# This role's NATS user (%s) and the CA that verifies the servers (TLS).\n", role)
	fmt.Fprintf(b, "NATS_NKEY = %s\n", o.path(SeedFile(role)))
	fmt.Fprintf(b, "NATS_TLS_CA = %s\n", o.path(CACert))
}

func shipConfig(o Options) []byte {
	var b bytes.Buffer
	header(&b, o, "mfsha ship (or a failover node with VIP, see deploy/mfsha-ship.cfg): mfsha ship --config ship.cfg")
	client(&b, o, natsconn.RoleNode)
	fmt.Fprintf(&b, "REPLICAS = %d\n", o.replicas())
	b.WriteString("DATA_PATH = /var/lib/mfs\nSTATE_PATH = /var/lib/mfsha\n")
	b.WriteString("# Signs every batch and snapshot; a failover node also verifies what it folds.\n")
	fmt.Fprintf(&b, "SIGNING_KEY = %s\n", o.path(sign.PrivateFile))
	trusted(&b, o)
	return b.Bytes()
}

func standbyConfig(o Options) []byte {
	var b bytes.Buffer
	header(&b, o, "mfsha standby: mfsha standby --config standby.cfg")
	b.WriteString("# A standby that is also a failover node (VIP set) writes the lease and may ship: give\n")
	fmt.Fprintf(&b, "# it the node's user instead: NATS_NKEY = %s\n", o.path(SeedFile(natsconn.RoleNode)))
	client(&b, o, natsconn.RoleStandby)
	b.WriteString("DATA_PATH = /var/lib/mfsha/standby\n")
	trusted(&b, o)
	fmt.Fprintf(&b, "# With VIP set it ships once promoted: SIGNING_KEY = %s\n", o.path(sign.PrivateFile))
	return b.Bytes()
}

func restoreConfig(o Options) []byte {
	var b bytes.Buffer
	header(&b, o, "mfsha restore (read only): mfsha restore --config restore.cfg --to TIME --out DIR")
	client(&b, o, natsconn.RoleReader)
	trusted(&b, o)
	return b.Bytes()
}

// trusted writes TRUSTED_KEYS: what a reader folds must be signed by the cluster's key.
func trusted(b *bytes.Buffer, o Options) {
	fmt.Fprintf(b, "# Only batches and snapshots signed by these keys are folded (add the next key here first\n# to rotate).\nTRUSTED_KEYS = %s\n", o.path(sign.PublicFile))
}

func statusConfig(o Options) []byte {
	var b bytes.Buffer
	header(&b, o, "mfsha status (read only): mfsha status --config status.cfg")
	client(&b, o, natsconn.RoleReader)
	return b.Bytes()
}

func adminConfig(o Options) []byte {
	var b bytes.Buffer
	header(&b, o, "an operator's NATS user: mfsha status / switchover --config admin.cfg. Admin may delete\n# streams, buckets and messages: keep admin.nk off the cluster's hosts")
	client(&b, o, natsconn.RoleAdmin)
	return b.Bytes()
}

func routes(o Options, self Host, scheme string) []string {
	var r []string
	for _, h := range o.Hosts {
		if h != self {
			r = append(r, scheme+"://"+net.JoinHostPort(h.Addr, strconv.Itoa(RoutePort)))
		}
	}
	return r
}

func natsConfig(o Options, h Host) []byte {
	var b bytes.Buffer
	header(&b, o, "mfsha nats on "+h.Name+": mfsha nats --config "+HostConfig(h.Name))
	fmt.Fprintf(&b, "NATS_SERVER_NAME = %s\n", h.Name)
	fmt.Fprintf(&b, "NATS_LISTEN = 0.0.0.0:%d\n", ClientPort)
	if r := routes(o, h, "nats-route"); len(r) > 0 {
		b.WriteString("NATS_CLUSTER_NAME = mfsha\n")
		fmt.Fprintf(&b, "NATS_CLUSTER_LISTEN = 0.0.0.0:%d\n", RoutePort)
		fmt.Fprintf(&b, "NATS_ROUTES = %s\n", strings.Join(r, ", "))
	}
	b.WriteString("STATE_PATH = /var/lib/mfsha\n")
	b.WriteString("# Users and their permissions, this server's certificate, and the CA routes must show.\n")
	fmt.Fprintf(&b, "NATS_USERS = %s\n", o.path(UsersFile))
	fmt.Fprintf(&b, "NATS_SERVER_CERT = %s\n", o.path(HostCert(h.Name)))
	fmt.Fprintf(&b, "NATS_SERVER_KEY = %s\n", o.path(HostKey(h.Name)))
	fmt.Fprintf(&b, "NATS_CA = %s\n", o.path(CACert))
	return b.Bytes()
}

// serverConf is host h's server as a nats-server configuration file: the same users,
// permissions and TLS as `mfsha nats`, for operators who run nats-server themselves.
func serverConf(o Options, h Host, u natsconn.Users) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# nats-server -c %s: the NATS server on %s with the users, permissions and TLS of\n", HostServerConf(h.Name), h.Name)
	fmt.Fprintf(&b, "# `mfsha nats`. Written by `mfsha init --cluster %s`.\n", o.Cluster)
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"0.0.0.0:%d\"\n", h.Name, ClientPort)
	b.WriteString("jetstream { store_dir: \"/var/lib/mfsha/nats\" }\n")
	fmt.Fprintf(&b, "tls {\n  cert_file: %q\n  key_file: %q\n  timeout: 5\n}\n", o.path(HostCert(h.Name)), o.path(HostKey(h.Name)))
	b.WriteString("authorization {\n  users: [\n")
	for _, r := range natsconn.Roles {
		pub := u.Keys[r]
		fmt.Fprintf(&b, "    # %s\n    { nkey: %q", r, pub)
		if g := natsconn.GrantsFor(r, u.Cluster, pub); g != nil {
			b.WriteString(", permissions: {\n")
			fmt.Fprintf(&b, "        publish: { allow: %s, deny: %s }\n", list(g.PubAllow), list(g.PubDeny))
			fmt.Fprintf(&b, "        subscribe: { allow: %s }\n      }", list(g.SubAllow))
		}
		b.WriteString(" }\n")
	}
	b.WriteString("  ]\n}\n")
	if r := routes(o, h, "nats-route"); len(r) > 0 {
		fmt.Fprintf(&b, "cluster {\n  name: \"mfsha\"\n  listen: \"0.0.0.0:%d\"\n  routes: %s\n", RoutePort, list(r))
		fmt.Fprintf(&b, "  tls {\n    cert_file: %q\n    key_file: %q\n    ca_file: %q\n    verify: true\n    timeout: 5\n  }\n}\n",
			o.path(HostCert(h.Name)), o.path(HostKey(h.Name)), o.path(CACert))
	}
	return b.Bytes()
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
