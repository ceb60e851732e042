package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
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
	Security   ServerSecurity
	Log        *slog.Logger // the server's errors and warnings; nil: none
}

// ServerSecurity are the files that secure a server, all made by `mfsha init`.
type ServerSecurity struct {
	Users string // NATS_USERS: nkey users and their roles (nats-users.cfg)
	Cert  string // NATS_SERVER_CERT: this server's certificate, for clients and routes
	Key   string // NATS_SERVER_KEY
	CA    string // NATS_CA: the cluster CA; verifies the routes' certificates (mutual TLS)
}

// ErrInsecure is returned when a server would listen beyond loopback without its secrets.
var ErrInsecure = errors.New("refusing to serve NATS beyond loopback without authentication and TLS")

// tlsTimeout bounds a TLS handshake, in seconds: generous, since the lab and small hosts are
// slow under load and a failed handshake only costs a reconnect.
const tlsTimeout = 5

// StartEmbedded starts the server and waits until it accepts connections. The caller owns it:
// Shutdown and WaitForShutdown when done.
//
// Secure by default: a server that listens for clients on anything but loopback requires
// NATS_USERS, NATS_SERVER_CERT and NATS_SERVER_KEY (nkey authentication with per-role
// permissions, TLS); one that listens for routes beyond loopback also requires NATS_CA, and
// accepts and dials routes only with mutual TLS against that CA, so an unknown server cannot
// join. The files given are used on loopback too.
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
	sec := o.Security
	if (sec.Cert == "") != (sec.Key == "") {
		return nil, errors.New("NATS_SERVER_CERT and NATS_SERVER_KEY: give both or neither")
	}
	if !isLoopback(host) {
		var missing []string
		for _, f := range []struct{ key, val string }{{"NATS_USERS", sec.Users}, {"NATS_SERVER_CERT", sec.Cert}, {"NATS_SERVER_KEY", sec.Key}} {
			if f.val == "" {
				missing = append(missing, f.key)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: NATS_LISTEN is %s but %s not set; run `mfsha init` to make the cluster's secrets and set them (or listen on 127.0.0.1)",
				ErrInsecure, net.JoinHostPort(host, strconv.Itoa(port)), strings.Join(missing, ", "))
		}
	}
	if sec.Users != "" {
		users, err := LoadUsers(sec.Users)
		if err != nil {
			return nil, err
		}
		so.Nkeys = NkeyUsers(users)
	}
	if sec.Cert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: sec.Cert, KeyFile: sec.Key})
		if err != nil {
			return nil, fmt.Errorf("NATS_SERVER_CERT %s, NATS_SERVER_KEY %s: %w", sec.Cert, sec.Key, err)
		}
		so.TLSConfig, so.TLSTimeout = tc, tlsTimeout
	}
	if len(o.Routes) > 0 {
		chost, cport, err := splitHostPort(o.ClusterAt, "0.0.0.0", 6222)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cluster address %q: %w", o.ClusterAt, err)
		}
		so.Cluster = server.ClusterOpts{Name: o.Cluster, Host: chost, Port: cport}
		so.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
		if !isLoopback(chost) && (sec.CA == "" || sec.Cert == "") {
			return nil, fmt.Errorf("%w: NATS_CLUSTER_LISTEN is %s but NATS_CA and NATS_SERVER_CERT are not both set: any host could join as a route; run `mfsha init` to make the cluster's CA and certificates",
				ErrInsecure, net.JoinHostPort(chost, strconv.Itoa(cport)))
		}
		if sec.CA != "" {
			if sec.Cert == "" {
				return nil, errors.New("NATS_CA is set but NATS_SERVER_CERT is not: routes need this server's certificate")
			}
			// Mutual TLS: a route, in either direction, must show a certificate of the
			// cluster CA, and the dialing side checks the name or address it dialed.
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: sec.Cert, KeyFile: sec.Key, CaFile: sec.CA, Verify: true})
			if err != nil {
				return nil, fmt.Errorf("NATS_CA %s, NATS_SERVER_CERT %s: %w", sec.CA, sec.Cert, err)
			}
			// A route is dialed as well as accepted: verify the server dialed with the same
			// CA (nats-server's own config parsing does the same for cluster TLS).
			tc.RootCAs = tc.ClientCAs
			so.Cluster.TLSConfig, so.Cluster.TLSTimeout = tc, tlsTimeout
		}
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Log != nil {
		s.SetLogger(serverLog{o.Log}, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s did not start within 10s", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return s, nil
}

// InProcessURL is the URL to give with Options.InProcess for s: nats://, since a tls:// URL
// makes the client demand TLS, which an in-process connection does not use.
func InProcessURL(s *server.Server) string {
	return "nats://" + s.Addr().String()
}

// isLoopback reports whether host (an address or "localhost") reaches this host only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
