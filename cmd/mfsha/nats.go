package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/natsconn"
)

// natsCommand is `mfsha nats`: the JetStream server mfsha embeds, run alone, for the NATS
// hosts of a three-node cluster kept apart from the master.
type natsCommand struct {
	embedded embeddedSettings
	logs     logSettings
	state    string
	http     httpSettings
}

const natsUsage = `Usage: mfsha nats [--state DIR] [--nats-listen ADDR] [--nats-routes URLS] [flags]

Runs the NATS JetStream server that mfsha embeds, on its own: one node of the NATS cluster
that holds the changelog stream, the snapshots and the failover lease. Three such nodes, each
with the routes of the other two, make a cluster that survives the loss of one; put them on
hosts other than the master's, so that losing the master's host does not also stall NATS.

Secure by default: beyond loopback it requires NATS_USERS, NATS_SERVER_CERT and NATS_SERVER_KEY
(nkey users with per-role permissions, TLS), and for routes NATS_CA (mutual TLS against the
cluster CA: an unknown server cannot join). ` + "`mfsha init`" + ` makes them all, and a ready
nats-HOST.cfg per node.`

func (c *natsCommand) Run(ctx context.Context, args []string) error {
	s := config.New("nats", natsUsage)
	c.embedded.bind(s)
	c.logs.bind(s)
	s.String(&c.state, "state", "STATE_PATH", "/var/lib/mfsha", "state `directory`: the JetStream store is STATE_PATH/nats")
	c.http.bind(s, "")
	if err := parse(s, args); err != nil {
		return err
	}
	log, err := c.logs.logger()
	if err != nil {
		return usageError{err}
	}
	if len(c.embedded.opts.Routes) > 0 && c.embedded.opts.ServerName == "" {
		return usageError{errors.New("NATS_SERVER_NAME: required in a cluster (unique per node)")}
	}
	if c.embedded.opts.ServerName == "" {
		c.embedded.opts.ServerName, _ = os.Hostname()
	}
	o := c.embedded.opts
	o.StoreDir = filepath.Join(c.state, "nats")
	o.Log = log
	srv, err := natsconn.StartEmbedded(o)
	if errors.Is(err, natsconn.ErrInsecure) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	log.Info("NATS JetStream server running", "name", o.ServerName, "listen", o.Listen, "routes", o.Routes, "store", o.StoreDir)
	web := newDaemonHTTP(c.http, "", false) // no cluster: /status and /standby answer 503
	if err := web.serve(ctx, prometheus.NewRegistry(), log); err != nil {
		srv.Shutdown()
		return err
	}
	// /health: the server accepts connections and runs JetStream, checked every few seconds.
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			if srv.ReadyForConnections(time.Second) && srv.JetStreamEnabled() {
				web.live.Tick("nats server")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	<-ctx.Done()
	log.Info("stopping NATS")
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
