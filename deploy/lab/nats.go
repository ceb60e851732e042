package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/secrets"
)

// Hosts of the lab's three-node NATS JetStream cluster, apart from the master's host.
const (
	HostNATS1 = "n1"
	HostNATS2 = "n2"
	HostNATS3 = "n3"
)

// Ports of a NATS node.
const (
	PortNATSClient = 4222
	PortNATSRoute  = 6222
)

// RoleNATS is the role of an `mfsha nats` process.
const RoleNATS Role = "nats"

// NATSHosts are the hosts of the NATS cluster, to add to Config.Hosts.
func NATSHosts() []HostSpec {
	return []HostSpec{{Name: HostNATS1}, {Name: HostNATS2}, {Name: HostNATS3}}
}

// NATSURL is the client URL of the NATS node on host.
func (l *Lab) NATSURL(host string) string {
	return "nats://" + netip.AddrPortFrom(l.HostAddr(host), PortNATSClient).String()
}

// StartNATS runs `BIN nats` (mfsha's embedded JetStream server, alone) on each of hosts, routed
// to one another as one cluster, and returns their client URLs. It returns once every node
// accepts clients and a stream replicated on all of them can be placed.
//
// The servers run secured as in production: the lab's secrets (see Secrets) give them their
// users, certificates and CA; clients need a role's flags (NATSFlags).
func (l *Lab) StartNATS(ctx context.Context, bin string, hosts ...string) ([]string, error) {
	var urls []string
	for _, h := range hosts {
		if _, err := l.host(h); err != nil {
			return nil, err
		}
		urls = append(urls, l.NATSURL(h))
	}
	sec, err := l.makeSecrets(hosts)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if err := l.Start(ctx, l.natsSpec(bin, sec, h, hosts)); err != nil {
			return nil, err
		}
	}
	// JetStream answers once the nodes have found each other and elected a meta leader.
	deadline, cancel := context.WithTimeout(ctx, l.cfg.StartTimeout)
	defer cancel()
	err = poll(deadline, func() bool {
		nc, err := l.ConnectNATS(hosts[0], urls...)
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		// Ready when a stream replicated on every node can be placed: a meta leader alone is
		// not enough, it may not know all its peers yet.
		actx, acancel := context.WithTimeout(deadline, 2*time.Second)
		defer acancel()
		_, err = js.CreateOrUpdateStream(actx, jetstream.StreamConfig{Name: "LAB_READY", Subjects: []string{"lab.ready"},
			Replicas: len(hosts), Storage: jetstream.MemoryStorage})
		if err != nil {
			return false
		}
		return js.DeleteStream(actx, "LAB_READY") == nil
	})
	if err != nil {
		return nil, fmt.Errorf("lab %s: NATS cluster on %v: no JetStream meta leader: %w (logs: %s)", l.cfg.Name, hosts, err, l.LogPath(hosts[0], RoleNATS))
	}
	return urls, nil
}

// natsSpec is the NATS node on host h of the cluster made of hosts: its state in h's
// directory, routed to the others, ready when it accepts connections.
func (l *Lab) natsSpec(bin, sec, h string, hosts []string) ProcSpec {
	var routes []string
	for _, o := range hosts {
		if o != h {
			routes = append(routes, "nats-route://"+netip.AddrPortFrom(l.HostAddr(o), PortNATSRoute).String())
		}
	}
	self := l.HostAddr(h)
	argv := []string{bin, "nats", "--state", filepath.Join(l.HostDir(h), "mfsha"), "--nats-server-name", h,
		"--nats-listen", netip.AddrPortFrom(self, PortNATSClient).String(),
		"--nats-users", filepath.Join(sec, secrets.UsersFile), "--nats-ca", filepath.Join(sec, secrets.CACert),
		"--nats-server-cert", filepath.Join(sec, secrets.HostCert(h)), "--nats-server-key", filepath.Join(sec, secrets.HostKey(h))}
	if len(routes) > 0 {
		argv = append(argv, "--nats-cluster-name", l.cfg.Name, "--nats-cluster-listen", netip.AddrPortFrom(self, PortNATSRoute).String(),
			"--nats-routes", strings.Join(routes, ","))
	}
	dial := l.Dialer(h)
	addr := netip.AddrPortFrom(self, PortNATSClient).String()
	return ProcSpec{Host: h, Role: RoleNATS, Argv: argv, Ready: func(ctx context.Context) error {
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}}
}

// ConnectNATS connects the calling process to NATS servers of the lab as the admin user (the
// tests' own view: allowed everything), its sockets opened inside from's namespace (the lab's
// addresses are not routed to the caller's).
func (l *Lab) ConnectNATS(from string, urls ...string) (*nats.Conn, error) {
	return l.ConnectNATSAs(from, natsconn.RoleAdmin, urls...)
}

// ConnectNATSAs connects as role (see ConnectNATS); role "" connects with no credentials
// (but trusting the lab's CA), as a host outside the cluster would.
func (l *Lab) ConnectNATSAs(from string, role natsconn.Role, urls ...string) (*nats.Conn, error) {
	sec := l.secretsDir()
	opts := []nats.Option{nats.RootCAs(filepath.Join(sec, secrets.CACert))}
	if role != "" {
		nk, err := nats.NkeyOptionFromSeed(filepath.Join(sec, secrets.SeedFile(role)))
		if err != nil {
			return nil, fmt.Errorf("lab %s: %s's nkey: %w", l.cfg.Name, role, err)
		}
		opts = append(opts, nk)
		if role != natsconn.RoleAdmin { // the others may only use their own inbox
			pub, err := l.rolePublicKey(role)
			if err != nil {
				return nil, err
			}
			opts = append(opts, nats.CustomInboxPrefix(natsconn.InboxPrefix(pub)))
		}
	}
	return l.ConnectNATSWith(from, urls, opts...)
}

// ConnectNATSWith connects from host from to urls with the given options (credentials, TLS)
// and the lab's: sockets in from's namespace, quick reconnects and pings.
func (l *Lab) ConnectNATSWith(from string, urls []string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.SetCustomDialer(natsDialer{l.Dialer(from)}),
		nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.Timeout(2 * time.Second),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3)}, // a dead host sends no RST
		opts...)
	return nats.Connect(strings.Join(urls, ","), all...)
}

type natsDialer struct{ dial DialFunc }

func (d natsDialer) Dial(network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.dial(ctx, network, address)
}
