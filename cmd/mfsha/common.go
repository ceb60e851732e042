package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/stream"
)

// natsSettings are the settings every command that talks to NATS shares.
type natsSettings struct {
	conn    natsconn.Options
	cluster string
}

func (n *natsSettings) bind(s *config.Set) {
	s.Strings(&n.conn.URLs, "nats", "NATS_URL", nil, "NATS server `URLs`, comma-separated; empty: the embedded server")
	s.String(&n.conn.Creds, "nats-creds", "NATS_CREDS", "", "NATS credentials `file` (JWT, for an external NATS with decentralized auth)")
	s.String(&n.conn.NKey, "nats-nkey", "NATS_NKEY", "", "NATS nkey seed `file` of this role (node.nk, standby.nk, reader.nk or admin.nk, made by mfsha init)")
	s.String(&n.conn.TLSCA, "nats-tls-ca", "NATS_TLS_CA", "", "CA `file` to verify the NATS servers (ca.crt made by mfsha init)")
	s.String(&n.conn.TLSCert, "nats-tls-cert", "NATS_TLS_CERT", "", "client certificate `file` for NATS")
	s.String(&n.conn.TLSKey, "nats-tls-key", "NATS_TLS_KEY", "", "client key `file` for NATS")
	s.String(&n.cluster, "cluster", "CLUSTER", "mfs", "MooseFS cluster `name`: names the stream and buckets")
}

func (n *natsSettings) validate() error {
	if err := stream.ValidCluster(n.cluster); err != nil {
		return fmt.Errorf("CLUSTER: %w", err)
	}
	return n.conn.Validate()
}

// embeddedSettings configure the JetStream server mfsha runs itself when no NATS_URL is given.
type embeddedSettings struct {
	opts natsconn.EmbeddedOptions
}

func (e *embeddedSettings) bind(s *config.Set) {
	s.String(&e.opts.Listen, "nats-listen", "NATS_LISTEN", "0.0.0.0:4222", "embedded NATS: client `address` (standbys connect here)")
	s.String(&e.opts.ServerName, "nats-server-name", "NATS_SERVER_NAME", "", "embedded NATS: server `name`, unique in a NATS cluster (default: host name)")
	s.String(&e.opts.Cluster, "nats-cluster-name", "NATS_CLUSTER_NAME", "mfsha", "embedded NATS: cluster `name` when routes are given")
	s.String(&e.opts.ClusterAt, "nats-cluster-listen", "NATS_CLUSTER_LISTEN", "0.0.0.0:6222", "embedded NATS: route `address` when routes are given")
	s.Strings(&e.opts.Routes, "nats-routes", "NATS_ROUTES", nil, "embedded NATS: `URLs` of the other servers (nats-route://host:6222), comma-separated")
	s.String(&e.opts.Security.Users, "nats-users", "NATS_USERS", "", "embedded NATS: `file` of the nkey users and their roles (nats-users.cfg made by mfsha init); required beyond loopback")
	s.String(&e.opts.Security.Cert, "nats-server-cert", "NATS_SERVER_CERT", "", "embedded NATS: this server's TLS certificate `file` (for clients and routes); required beyond loopback")
	s.String(&e.opts.Security.Key, "nats-server-key", "NATS_SERVER_KEY", "", "embedded NATS: this server's TLS key `file`")
	s.String(&e.opts.Security.CA, "nats-ca", "NATS_CA", "", "embedded NATS: cluster CA `file` that routes' certificates must be signed by (mutual TLS); required for routes beyond loopback")
}

// checkUsers checks that the embedded server's users are the cluster's: a users file of
// another cluster would grant its roles the wrong stream.
func (e *embeddedSettings) checkUsers(cluster string) error {
	if e.opts.Security.Users == "" {
		return nil
	}
	u, err := natsconn.LoadUsers(e.opts.Security.Users)
	if err != nil {
		return err
	}
	if u.Cluster != cluster {
		return fmt.Errorf("NATS_USERS %s is for cluster %q, CLUSTER is %q", e.opts.Security.Users, u.Cluster, cluster)
	}
	return nil
}

// logSettings pick the log level.
type logSettings struct{ level string }

func (l *logSettings) bind(s *config.Set) {
	s.String(&l.level, "log-level", "LOG_LEVEL", "info", "log `level`: debug, info, warn, error")
}

func (l *logSettings) logger() (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", l.level)
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
	// The first line of every log names the build, so that a log says which mfsha wrote it;
	// written to the handler directly, it appears whatever LOG_LEVEL is.
	bi := buildinfo.Get()
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, buildinfo.Writer(), 0)
	rec.AddAttrs(slog.String("commit", bi.Commit), slog.Bool("modified", bi.Modified), slog.String("go", bi.GoVersion))
	_ = h.Handle(context.Background(), rec)
	return slog.New(h), nil
}

// parse parses args into s and turns bad input into a usage error.
func parse(s *config.Set, args []string) error {
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if s.FlagSet().NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", s.FlagSet().Arg(0))}
	}
	return nil
}

// setup parses args into s and returns the logger, checking the NATS settings: the first
// steps of every command that talks to NATS.
func setup(s *config.Set, args []string, logs *logSettings, n *natsSettings) (*slog.Logger, error) {
	if err := parse(s, args); err != nil {
		return nil, err
	}
	log, err := logs.logger()
	if err != nil {
		return nil, usageError{err}
	}
	if err := n.validate(); err != nil {
		return nil, usageError{err}
	}
	return log, nil
}

// connection is an open NATS connection and, when mfsha runs it, the embedded server.
type connection struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *server.Server
}

func (c *connection) Close() {
	if c.nc != nil {
		c.nc.Drain()
		c.nc.Close()
	}
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}

// connect reaches NATS: the configured URLs, or else an embedded server with its store under
// stateDir (when emb is nil, the local default URL). A daemon retries forever (giveUp 0); an
// interactive command gives up after giveUp.
func connect(ctx context.Context, n natsSettings, emb *embeddedSettings, stateDir, name string, giveUp time.Duration, log *slog.Logger) (*connection, error) {
	c := &connection{}
	opts := n.conn
	opts.Name = name
	if len(opts.URLs) == 0 {
		if emb == nil {
			opts.URLs = []string{nats.DefaultURL}
		} else {
			eo := emb.opts
			eo.StoreDir = filepath.Join(stateDir, "nats")
			eo.Log = log
			srv, err := natsconn.StartEmbedded(eo)
			if errors.Is(err, natsconn.ErrInsecure) {
				return nil, usageError{err}
			}
			if err != nil {
				return nil, err
			}
			c.srv = srv
			// In-process: no TLS to our own server (a nats:// URL: tls:// would demand it), but
			// the same nkey and permissions.
			opts.URLs = []string{natsconn.InProcessURL(srv)}
			opts.InProcess = srv
			log.Info("embedded NATS JetStream server started", "listen", eo.Listen, "store", eo.StoreDir, "routes", eo.Routes)
		}
	}
	cctx := ctx
	if giveUp > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, giveUp)
		defer cancel()
	}
	nc, err := natsconn.Connect(cctx, opts, log)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second), jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.js = js
	return c, nil
}
