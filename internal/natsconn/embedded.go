package natsconn

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures a JetStream server run inside the mfsha process.
type EmbeddedOptions struct {
	StoreDir   string   // JetStream file store; required
	Listen     string   // host:port for clients (standbys on other hosts connect here); ":4222" by default
	ServerName string   // unique in a cluster; defaults to the host name
	Cluster    string   // NATS cluster name, when Routes are given
	ClusterAt  string   // host:port for routes from the other servers
	Routes     []string // nats-route://host:port of the other servers
	MaxMemory  int64    // JetStream memory store limit, 0 for the server's default
}

// StartEmbedded starts the server and waits until it accepts connections. The caller owns it:
// Shutdown and WaitForShutdown when done.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("embedded NATS: no store directory")
	}
	host, port, err := splitHostPort(o.Listen, "0.0.0.0", 4222)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address %q: %w", o.Listen, err)
	}
	so := &server.Options{
		ServerName:         o.ServerName,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           filepath.Clean(o.StoreDir),
		JetStreamMaxMemory: o.MaxMemory,
		NoSigs:             true,
		NoLog:              true,
	}
	if len(o.Routes) > 0 {
		chost, cport, err := splitHostPort(o.ClusterAt, "0.0.0.0", 6222)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cluster address %q: %w", o.ClusterAt, err)
		}
		so.Cluster = server.ClusterOpts{Name: o.Cluster, Host: chost, Port: cport}
		so.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s did not start within 10s", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return s, nil
}

func splitHostPort(addr, defHost string, defPort int) (string, int, error) {
	if addr == "" {
		return defHost, defPort, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if h == "" {
		h = defHost
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < -1 || n > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, n, nil
}
