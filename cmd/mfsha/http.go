package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/httpapi"
	"github.com/mfsha/mfsha/internal/liveness"
	"github.com/mfsha/mfsha/restorer"
)

// httpSettings configure a daemon's HTTP address: metrics and the endpoints of httpapi.
type httpSettings struct {
	listen string
	stale  time.Duration
	maxLag int
}

func (h *httpSettings) bind(s *config.Set, def string) {
	s.String(&h.listen, "metrics", "METRICS_LISTEN", def, "HTTP `address` of /metrics, /health, /master, /standby and /status (read-only, no authentication); empty disables")
	s.Duration(&h.stale, "health-stale", "HEALTH_STALE", time.Minute, "/health answers 503 when a loop of the daemon has not turned for this `long` (keep it above the longest fold)")
	s.Int(&h.maxLag, "standby-max-lag", "STANDBY_MAX_LAG", 100000, "/standby answers 200 while the materialized metadata is at most this many `lines` behind the stream (keep it above FOLD_LINES)")
}

func (h *httpSettings) validate() error {
	if h.stale <= 0 {
		return fmt.Errorf("HEALTH_STALE = %v: want more than 0", h.stale)
	}
	if h.maxLag < 0 {
		return fmt.Errorf("STANDBY_MAX_LAG = %d: want 0 or more", h.maxLag)
	}
	return nil
}

// daemonHTTP is what a daemon's endpoints ask. The daemon fills in its parts as it starts
// (the HTTP server starts first, so that /health answers while NATS is still being reached).
type daemonHTTP struct {
	set     httpSettings
	cluster string
	live    *liveness.Monitor
	conn    atomic.Pointer[connection]
	node    atomic.Pointer[failover.Node]    // failover nodes only
	standby atomic.Pointer[restorer.Standby] // the standby currently running, if any
	leased  bool                             // a failover node: /master asks the node
}

// newDaemonHTTP: cluster "" for a daemon of no MooseFS cluster (mfsha nats); leased for a
// failover node.
func newDaemonHTTP(set httpSettings, cluster string, leased bool) *daemonHTTP {
	return &daemonHTTP{set: set, cluster: cluster, live: liveness.New(), leased: leased}
}

// serve starts the HTTP server with reg's metrics (plus the Go and process collectors).
func (d *daemonHTTP) serve(ctx context.Context, reg *prometheus.Registry, log *slog.Logger) error {
	if err := d.set.validate(); err != nil {
		return usageError{err}
	}
	registerRuntime(reg)
	cfg := httpapi.Config{Addr: d.set.listen, Gatherer: reg, Live: d.live, Stale: d.set.stale,
		Standby: d.standbyVerdict, MaxLag: uint64(d.set.maxLag), Status: d.status}
	if d.leased {
		cfg.Master = d.master
	}
	if d.cluster == "" { // mfsha nats: a server, not a member of one MooseFS cluster
		cfg.Status, cfg.Standby = nil, nil
	}
	_, err := httpapi.Serve(ctx, cfg, log)
	return err
}

// registerRuntime adds the Go runtime's and the process's metrics (go_*, process_*).
func registerRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func (d *daemonHTTP) master() httpapi.Verdict {
	n := d.node.Load()
	if n == nil {
		return httpapi.Verdict{Reason: "the failover node is starting"}
	}
	ok, why := n.Serving()
	return httpapi.Verdict{OK: ok, Reason: why}
}

func (d *daemonHTTP) standbyVerdict(maxLag uint64) httpapi.Verdict {
	if n := d.node.Load(); n != nil && n.Role() == failover.RoleMaster {
		return httpapi.Verdict{Reason: "this node is the master"}
	}
	sb := d.standby.Load()
	if sb == nil {
		return httpapi.Verdict{Reason: "this daemon runs no standby (yet)"}
	}
	lines, ok, why := sb.Lag()
	switch {
	case !ok:
		return httpapi.Verdict{Reason: why}
	case lines > maxLag:
		return httpapi.Verdict{Reason: fmt.Sprintf("%d lines behind the stream, more than %d: %s", lines, maxLag, why)}
	}
	return httpapi.Verdict{OK: true, Reason: fmt.Sprintf("%d lines behind the stream: %s", lines, why)}
}

func (d *daemonHTTP) status(ctx context.Context) (any, error) {
	c := d.conn.Load()
	if c == nil {
		return nil, fmt.Errorf("not connected to NATS yet")
	}
	return collectStatus(ctx, c, d.cluster)
}
