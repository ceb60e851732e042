package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/failsafe"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// failoverSettings turn `mfsha ship` and `mfsha standby` into the two starting roles of one
// failover node (when VIP is set): the node then holds or takes the lease, runs mfsmaster,
// holds the VIP and ships, or stands by, as the lease dictates.
type failoverSettings struct {
	cfg       failover.Config
	vip       string
	masterCfg string
	masterBin string
	// Failsafe (failover/DESIGN.md): where this node answers the holder's holds, and the
	// promise asked for, how often and how long each request may take.
	fsListen string
	fs       failsafe.Config
}

func (f *failoverSettings) bind(s *config.Set, state string) {
	def := failover.DefaultConfig()
	host, _ := os.Hostname()
	s.String(&f.vip, "vip", "VIP", "", "failover: the master's virtual `address/prefix` (e.g. 10.0.0.100/24); empty: no failover")
	s.String(&f.cfg.Interface, "interface", "INTERFACE", def.Interface, "failover: network `interface` that carries the VIP")
	s.String(&f.cfg.Name, "name", "NODE_NAME", host, "failover: this node's `name`, unique in the cluster")
	s.String(&f.cfg.Addr, "node-addr", "NODE_ADDR", "", "failover: this node's `address`, shown by status (default: the host name)")
	s.String(&f.masterCfg, "mfsmaster-config", "MFSMASTER_CONFIG", "/etc/mfs/mfsmaster.cfg", "failover: mfsmaster's config `file` (its DATA_PATH is the master's)")
	s.String(&f.masterBin, "mfsmaster", "MFSMASTER_BIN", "mfsmaster", "the mfsmaster `binary` of the cluster's MooseFS release: every fold (standby, promotion) and the serving master")
	s.Duration(&f.cfg.LeaseTTL, "lease-ttl", "LEASE_TTL", def.LeaseTTL, "failover: the lease expires this `long` after its last renewal")
	s.Duration(&f.cfg.RenewEvery, "renew-every", "RENEW_EVERY", def.RenewEvery, "failover: the master renews the lease this `often`")
	s.Duration(&f.cfg.RenewTimeout, "renew-timeout", "RENEW_TIMEOUT", def.RenewTimeout, "failover: each renewal attempt gets this `long`")
	s.Duration(&f.cfg.MasterStopTimeout, "master-stop-timeout", "MASTER_STOP_TIMEOUT", def.MasterStopTimeout, "failover: a clean stop of mfsmaster gets this `long`, then SIGKILL")
	s.Duration(&f.cfg.CheckEvery, "check-every", "CHECK_EVERY", def.CheckEvery, "failover: health-check the master this `often`")
	s.Duration(&f.cfg.CheckTimeout, "check-timeout", "CHECK_TIMEOUT", def.CheckTimeout, "failover: each health check gets this `long`")
	s.Int(&f.cfg.CheckFailures, "check-failures", "CHECK_FAILURES", def.CheckFailures, "failover: this many failed checks in a row mean the master is down")
	s.Duration(&f.cfg.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", def.DrainTimeout, "failover: a failed master ships what its files hold for at most this `long`")
	s.Duration(&f.cfg.StartGrace, "start-grace", "START_GRACE", def.StartGrace, "failover: a standby just started does not take a free lease before this `long`")
	s.String(&f.cfg.ArchiveDir, "archive", "ARCHIVE_PATH", filepath.Join(state, "archive"), "failover: `directory` for a master's files superseded at a failover")
	s.String(&f.cfg.LocalNATSServer, "nats-local-server", "NATS_LOCAL_SERVER", "", "failover: `name` of the NATS server on this host, kept from leading the lease")
	fs := failsafe.DefaultConfig()
	s.String(&f.fsListen, "failsafe-listen", "FAILSAFE_LISTEN", ":9482", "failover: `address` where this node answers the master's failsafe holds (signed; a master keeps serving through a NATS election only while every failover node answers); empty disables failsafe")
	s.Duration(&f.fs.Hold, "failsafe-hold", "FAILSAFE_HOLD", fs.Hold, "failover: a node that answers a hold takes no expired lease for this `long`")
	s.Duration(&f.fs.Every, "failsafe-every", "FAILSAFE_EVERY", fs.Every, "failover: the master asks every failover node for a promise this `often`")
	s.Duration(&f.fs.Timeout, "failsafe-timeout", "FAILSAFE_TIMEOUT", fs.Timeout, "failover: each failsafe request gets this `long`")
}

func (f *failoverSettings) enabled() bool { return f.vip != "" }

// validate checks the settings and reads mfsmaster's config; it returns the master.
func (f *failoverSettings) validate(cluster string, log *slog.Logger) (*failover.Master, error) {
	p, err := netip.ParsePrefix(f.vip)
	if err != nil {
		return nil, fmt.Errorf("VIP = %q: want an IPv4 address with its prefix length, e.g. 10.0.0.100/24", f.vip)
	}
	f.cfg.VIP, f.cfg.Cluster = p, cluster
	def := failover.DefaultConfig()
	f.cfg.Announce, f.cfg.Burst = def.Announce, def.Burst
	if err := f.cfg.Validate(); err != nil {
		return nil, err
	}
	if f.fsListen != "" {
		if _, _, err := net.SplitHostPort(f.fsListen); err != nil {
			return nil, fmt.Errorf("FAILSAFE_LISTEN = %q: want host:port or :port: %w", f.fsListen, err)
		}
		f.fs.StopTimeout = f.cfg.MasterStopTimeout
		if err := f.fs.Validate(); err != nil {
			return nil, err
		}
	}
	m, err := failover.NewMaster(failover.MasterConfig{Bin: f.masterBin, Config: f.masterCfg, StopTimeout: f.cfg.MasterStopTimeout}, log)
	if err != nil {
		return nil, fmt.Errorf("MFSMASTER_CONFIG: %w", err)
	}
	return m, nil
}

// failsafeURL is the hold endpoint as the other nodes reach it: NODE_ADDR (else the host name)
// and the port this node listens on.
func failsafeURL(nodeAddr string, ln net.Addr) string {
	host := nodeAddr
	if host == "" {
		host, _ = os.Hostname()
	}
	_, port, _ := net.SplitHostPort(ln.String())
	return "http://" + net.JoinHostPort(host, port) + "/failsafe/hold"
}

// nodeParts is everything a failover node runs, set up by ship or standby.
type nodeParts struct {
	conn     *connection
	store    *snapshot.Store
	ship     shipper.Config
	standby  restorer.StandbyConfig
	replicas int
	reg      *prometheus.Registry
	web      *daemonHTTP
	log      *slog.Logger
}

// nodeMetrics are the metrics of a failover node: those of its shipper (while master), of its
// standby (while standing by) and its own. A plain ship or standby registers a subset.
type nodeMetrics struct {
	ship    *shipper.Metrics
	standby *restorer.StandbyMetrics
	node    *failover.Metrics
}

func newNodeMetrics(reg prometheus.Registerer) nodeMetrics {
	return nodeMetrics{ship: shipper.NewMetrics(reg), standby: restorer.NewStandbyMetrics(reg), node: failover.NewMetrics(reg)}
}

// runNode runs the failover node until ctx ends.
func runNode(ctx context.Context, start failover.Role, f *failoverSettings, master *failover.Master, p nodeParts) error {
	vip, err := failover.NewVIP(f.cfg.VIP, f.cfg.Interface)
	if err != nil {
		return usageError{err}
	}
	gate, err := failover.NewClientGate(vip.Addr(), master.ClientPort())
	if err != nil {
		return usageError{err}
	}
	var lease *failover.Lease
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		lease, err = failover.OpenLease(lctx, p.conn.js, f.cfg.Cluster, f.cfg.LeaseTTL, p.replicas)
		cancel()
		if err == nil {
			break
		}
		p.log.Warn("lease bucket not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	m := newNodeMetrics(p.reg)
	m.node.SaveMode.Set(float64(master.ChangelogSaveMode()))
	shipMetrics, sbMetrics := m.ship, m.standby
	d := failover.Deps{
		Lease:   lease,
		Master:  master,
		VIP:     vip,
		Gate:    gate,
		History: failover.StreamHistory{JS: p.conn.js, Cluster: f.cfg.Cluster, Verifier: p.standby.Verifier},
		NewShipper: func(epoch func() uint64, linesOnly bool) (failover.Shipper, error) {
			cfg := p.ship
			cfg.DataDir, cfg.Kind, cfg.Epoch, cfg.Live = master.DataPath(), shipper.KindMaster, epoch, p.web.live
			if linesOnly {
				cfg.Snapshots, cfg.Live = nil, nil
			}
			return shipper.New(cfg, p.conn.js, p.log, shipMetrics)
		},
		NewStandby: func() (failover.Standby, error) {
			cfg := p.standby
			cfg.Mfsmaster = master.Mfsmaster() // the one MFSMASTER_BIN: folds and serving alike
			cfg.Live = p.web.live
			sb, err := restorer.NewStandby(cfg, p.conn.js, p.store, p.log, sbMetrics)
			if err == nil {
				p.web.standby.Store(sb)
			}
			return sb, err
		},
		Live:    p.web.live,
		Log:     p.log,
		Metrics: m.node,
	}
	if f.cfg.LocalNATSServer != "" {
		d.Placement = failover.KeepLeaderOff(p.conn.nc, p.conn.js, lease, f.cfg.LocalNATSServer, p.log)
	}
	var fsLn net.Listener
	if f.fsListen != "" {
		if fsLn, err = net.Listen("tcp", f.fsListen); err != nil {
			return fmt.Errorf("FAILSAFE_LISTEN = %s: %w", f.fsListen, err)
		}
		defer fsLn.Close()
		d.Failsafe = &failover.Failsafe{Config: f.fs, URL: failsafeURL(f.cfg.Addr, fsLn.Addr()), Signer: p.ship.Signer, Verifier: p.standby.Verifier}
	}
	n, err := failover.New(f.cfg, d)
	if err != nil {
		return usageError{err}
	}
	if fsLn != nil {
		srv := &http.Server{Handler: n.FailsafeHandler(), ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
		go func() {
			if err := srv.Serve(fsLn); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
				p.log.Error("failsafe endpoint stopped: this node no longer promises, so the master cannot serve through a NATS election", "err", err)
			}
		}()
		defer srv.Close()
		p.log.Info("failsafe endpoint", "listen", fsLn.Addr().String(), "url", d.Failsafe.URL, "hold", f.fs.Hold, "every", f.fs.Every)
	}
	p.web.node.Store(n)
	p.log.Info("failover node", "name", f.cfg.Name, "starts_as", start, "vip", vip.String(), "master_data", master.DataPath(),
		"mfsmaster", master.Mfsmaster().Path, "moosefs", master.Mfsmaster().Version.String(),
		"lease_ttl", f.cfg.LeaseTTL, "standby_data", p.standby.Dir, "changelog_save_mode", master.ChangelogSaveMode())
	if master.ChangelogSaveMode() == 0 {
		p.log.Warn("mfsmaster answers clients before their changes are in its changelog (CHANGELOG_SAVE_MODE = 0, MooseFS's default): "+
			"a kill -9 of its processes can take back an acknowledged change that no metalogger got yet; set CHANGELOG_SAVE_MODE = 1 in "+f.masterCfg,
			"see", "README: Deploying on real hosts, step 6")
	}
	return n.Run(ctx, start)
}
