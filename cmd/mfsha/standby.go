package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// standbyCommand is `mfsha standby`.
type standbyCommand struct {
	nats  natsSettings
	logs  logSettings
	http  httpSettings
	cfg   restorer.StandbyConfig
	fo    failoverSettings
	state string
	ship  shipper.Config
	keys  keySettings

	noSnapshots bool
}

const standbyUsage = `Usage: mfsha standby --data DIR [--nats URL] [--cluster NAME] [flags]

Runs on a metalogger host and keeps DIR/metadata.mfs materialized from the cluster's stream:
the newest snapshot once, then the changelog folded in by the real mfsmaster -a restore
whenever FOLD_LINES lines wait or FOLD_EVERY has passed, so that a promotion has little left
to replay. With --metalogger, the lines a local mfsmetalogger has beyond the stream's are
merged in, so the standby is as current as the better of the two paths (and stays current
while NATS is unreachable). Every result's version is checked before it replaces the last good one. Its
position survives restarts (DIR/standby.state); if it fell out of retention, or the stream
moved to a new timeline, it resynchronizes from the newest snapshot and says so.

With --vip it is also a failover node: when the lease in NATS is free (the master failed, or
handed it over) it takes it, folds the last lines, moves the metadata into mfsmaster's
DATA_PATH, claims the VIP, starts mfsmaster and ships its changelog like ` + "`mfsha ship`" + `.`

func (c *standbyCommand) Run(ctx context.Context, args []string) error {
	s := config.New("standby", standbyUsage)
	c.nats.bind(s)
	c.logs.bind(s)
	def := restorer.DefaultStandbyConfig()
	s.String(&c.cfg.Dir, "data", "DATA_PATH", "/var/lib/mfsha/standby", "`directory` of the materialized metadata.mfs")
	s.Int(&c.cfg.FoldLines, "fold-lines", "FOLD_LINES", def.FoldLines, "fold as soon as this many `lines` wait")
	s.Duration(&c.cfg.FoldEvery, "fold-every", "FOLD_EVERY", def.FoldEvery, "fold waiting lines at least this `often`")
	s.Duration(&c.cfg.Poll, "poll", "POLL", def.Poll, "look at the stream this `often`")
	s.Duration(&c.cfg.FoldReplay, "fold-replay", "FOLD_REPLAY", def.FoldReplay, "fold when replaying the waiting lines at a promotion would take longer than this `duration` (estimated from the folds)")
	s.Int(&c.cfg.FoldCPUPercent, "fold-cpu-percent", "FOLD_CPU_PERCENT", def.FoldCPUPercent, "the folds' mfsmaster uses at most this `percent` of one core on average; holds every unforced fold back")
	s.Int(&c.cfg.FoldNiceLevel, "fold-nice-level", "FOLD_NICE_LEVEL", restorer.DefaultFoldNiceLevel, "the CPU nice `level` of the background folds' mfsmaster, 0 (mfsha's own) to 19 (the lowest); a promotion's fold runs at mfsha's own")
	s.String(&c.cfg.MetaloggerDir, "metalogger", "METALOGGER_PATH", "", "a local mfsmetalogger's DATA_PATH (`directory`): its lines beyond the stream's are merged in")
	s.String(&c.cfg.Receive, "receive", "RECEIVE", "", "receive the master's changelog in real time over the metalogger protocol from this `host:port` (the VIP and MATOML_LISTEN_PORT, 9419), instead of a local mfsmetalogger (METALOGGER_PATH)")
	s.String(&c.cfg.FoldUser, "fold-user", "FOLD_USER", restorer.DefaultFoldUser(), "the unprivileged `user` mfsmaster folds as, when run as root")
	c.http.bind(s, ":9481")
	c.keys.bindTrusted(s)
	c.keys.bindSigning(s)
	c.fo.bind(s, "/var/lib/mfsha")
	shipDef := shipper.DefaultConfig()
	c.ship = shipDef
	s.String(&c.state, "state", "STATE_PATH", "/var/lib/mfsha", "failover: mfsha's state `directory`")
	s.Int(&c.ship.Replicas, "replicas", "REPLICAS", shipDef.Replicas, "failover: stream and bucket `replicas` (3 in a three-node NATS cluster)")
	s.Duration(&c.ship.Retention, "retention", "RETENTION", shipDef.Retention, "failover: when master, keep snapshots and their lines this `long`")
	s.Bool(&c.noSnapshots, "no-snapshots", "NO_SNAPSHOTS", false, "failover: when master, ship changelog lines only")
	log, err := setup(s, args, &c.logs, &c.nats)
	if err != nil {
		return err
	}
	c.cfg.Cluster = c.nats.cluster
	if c.cfg.Verifier, err = c.keys.verifier(); err != nil {
		return usageError{err}
	}
	if c.fo.enabled() {
		if c.ship.Signer, err = c.keys.signer(); err != nil { // it ships once promoted
			return usageError{err}
		}
		c.ship.Trusted = c.cfg.Verifier
		return c.runNode(ctx, log)
	}
	if err := c.cfg.Validate(); err != nil {
		return usageError{err}
	}
	if c.cfg.Mfsmaster, err = moosefs.FindMfsmaster(ctx, c.fo.masterBin); err != nil {
		return usageError{err}
	}
	reg := prometheus.NewRegistry()
	m := restorer.NewStandbyMetrics(reg)
	web := newDaemonHTTP(c.http, c.nats.cluster, false)
	if err := web.serve(ctx, reg, log); err != nil {
		return err
	}
	c.cfg.Live = web.live
	host, _ := os.Hostname()
	conn, err := connect(ctx, c.nats, nil, "", "mfsha standby "+host, 0, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	web.conn.Store(conn)
	store, err := waitSnapshots(ctx, conn, c.nats.cluster, log)
	if err != nil {
		return err
	}
	sb, err := restorer.NewStandby(c.cfg, conn.js, store, log, m)
	if err != nil {
		return usageError{err}
	}
	web.standby.Store(sb)
	log.Info("standby", "data", c.cfg.Dir, "cluster", c.nats.cluster, "materialized", sb.Materialized(),
		"mfsmaster", c.cfg.Mfsmaster.Path, "moosefs", c.cfg.Mfsmaster.Version.String())
	return sb.Run(ctx)
}

// runNode runs standby as a failover node that starts as a standby.
func (c *standbyCommand) runNode(ctx context.Context, log *slog.Logger) error {
	master, err := c.fo.validate(c.nats.cluster, log)
	if err != nil {
		return usageError{err}
	}
	if err := c.cfg.Validate(); err != nil {
		return usageError{err}
	}
	host, _ := os.Hostname()
	c.ship.Cluster, c.ship.Source, c.ship.DataDir, c.ship.Kind = c.nats.cluster, host, master.DataPath(), shipper.KindMaster
	if err := c.ship.Validate(); err != nil {
		return usageError{err}
	}
	reg := prometheus.NewRegistry()
	web := newDaemonHTTP(c.http, c.nats.cluster, true)
	if err := web.serve(ctx, reg, log); err != nil {
		return err
	}
	conn, err := connect(ctx, c.nats, nil, "", "mfsha standby "+c.fo.cfg.Name, 0, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	web.conn.Store(conn)
	store, err := openSnapshots(ctx, conn, c.nats.cluster, c.ship.Replicas, log)
	if err != nil {
		return err
	}
	store = store.WithSigner(c.ship.Signer).WithVerifier(c.cfg.Verifier)
	if !c.noSnapshots {
		c.ship.Snapshots = store
	} else {
		c.ship.Retention = 0
	}
	return runNode(ctx, failover.RoleStandby, &c.fo, master, nodeParts{conn: conn, store: store, ship: c.ship, standby: c.cfg, replicas: c.ship.Replicas, reg: reg, web: web, log: log})
}

// waitSnapshots opens the snapshot bucket read only, waiting for the shipper to create it: a
// plain standby reads, and its NATS role may not create buckets.
func waitSnapshots(ctx context.Context, conn *connection, cluster string, log *slog.Logger) (*snapshot.Store, error) {
	for {
		store, err := snapshot.OpenReadOnly(ctx, conn.js, cluster)
		if err == nil {
			return store, nil
		}
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			log.Info("no snapshot bucket yet: waiting for the shipper to create it", "bucket", stream.SnapshotBucket(cluster))
		} else {
			log.Warn("snapshot bucket not ready; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(2 * time.Second):
		}
	}
}
