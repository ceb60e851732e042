package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// shipCommand is `mfsha ship`.
type shipCommand struct {
	nats     natsSettings
	embedded embeddedSettings
	logs     logSettings
	data     string
	kind     string
	state    string
	http     httpSettings
	cfg      shipper.Config
	fo       failoverSettings
	standby  restorer.StandbyConfig
	keys     keySettings

	noSnapshots bool
}

const shipUsage = `Usage: mfsha ship --data DIR [--nats URL] [--cluster NAME] [flags]

Publishes every changelog line of a MooseFS master (changelog.N.mfs) or metalogger
(changelog_ml.N.mfs) data directory to NATS JetStream, in order, with no gap and no duplicate,
and uploads every new metadata snapshot. It resumes from the last line the stream acknowledged.
Without --nats it runs an embedded JetStream server that standbys on other hosts connect to.

With --vip it is also the failover node of the master's host: it takes the lease in NATS if
its master's files hold every line the stream has, then runs mfsmaster itself (stop it in
systemd), holds the VIP and ships; when the master fails or the lease cannot be renewed it
fences itself and stands by, keeping metadata materialized in STANDBY_PATH like
` + "`mfsha standby`" + `, until the lease comes back to it.

Exit status: 0 stopped by a signal; 1 error; 2 bad flags or settings; 3 changelog gap (the
lines the stream needs next are in no file: nothing is skipped, see the log) or a line that
cannot be shipped (over 1 MB, or not a line MooseFS writes; the lines before it are shipped);
4 another writer appended to the stream (this shipper must not).`

func (c *shipCommand) Run(ctx context.Context, args []string) error {
	s := config.New("ship", shipUsage)
	c.nats.bind(s)
	c.embedded.bind(s)
	c.logs.bind(s)
	def := shipper.DefaultConfig()
	s.String(&c.data, "data", "DATA_PATH", "/var/lib/mfs", "MooseFS data `directory` of the master or metalogger")
	s.String(&c.kind, "kind", "KIND", "auto", "data directory `kind`: master, metalogger or auto")
	s.String(&c.state, "state", "STATE_PATH", "/var/lib/mfsha", "mfsha's state `directory` (embedded NATS store)")
	c.http.bind(s, ":9480")
	s.Int(&c.cfg.Replicas, "replicas", "REPLICAS", def.Replicas, "stream and bucket `replicas` (3 in a three-node NATS cluster)")
	s.Int(&c.cfg.MaxBatchBytes, "batch-bytes", "BATCH_BYTES", def.MaxBatchBytes, "changelog `bytes` per message before compression")
	s.Int(&c.cfg.Window, "window", "WINDOW", def.Window, "`batches` in flight before waiting for acknowledgements")
	s.Duration(&c.cfg.Poll, "poll", "POLL", def.Poll, "re-check the files this `often` even without a file event")
	s.Duration(&c.cfg.BatchDelay, "batch-delay", "BATCH_DELAY", def.BatchDelay, "after a changelog file event, take the next one no sooner than this `long`: what the master writes meanwhile ships as one batch (0: read on every event)")
	s.Duration(&c.cfg.Retention, "retention", "RETENTION", def.Retention, "keep snapshots, and the lines to roll them forward, this `long` (0: keep everything)")
	s.Bool(&c.noSnapshots, "no-snapshots", "NO_SNAPSHOTS", false, "ship changelog lines only; upload no snapshot (retention then never purges)")
	c.keys.bindSigning(s)
	c.keys.bindTrusted(s)
	c.fo.bind(s, "/var/lib/mfsha")
	sdef := restorer.DefaultStandbyConfig()
	s.String(&c.standby.Dir, "standby-data", "STANDBY_PATH", "/var/lib/mfsha/standby", "failover: `directory` of the metadata materialized while standing by")
	s.String(&c.standby.MetaloggerDir, "metalogger", "METALOGGER_PATH", "", "failover: a local mfsmetalogger's DATA_PATH (`directory`), merged in while standing by")
	s.String(&c.standby.Receive, "receive", "RECEIVE", "", "failover: while standing by, receive the master's changelog in real time from this `host:port` (the VIP and 9419), instead of a local mfsmetalogger")
	s.String(&c.standby.FoldUser, "fold-user", "FOLD_USER", restorer.DefaultFoldUser(), "failover: the unprivileged `user` mfsmaster folds as, when run as root")
	c.standby.FoldLines, c.standby.FoldEvery, c.standby.Poll = sdef.FoldLines, sdef.FoldEvery, sdef.Poll
	c.standby.FoldReplay, c.standby.FoldCPUPercent = sdef.FoldReplay, sdef.FoldCPUPercent
	s.Int(&c.standby.FoldNiceLevel, "fold-nice-level", "FOLD_NICE_LEVEL", restorer.DefaultFoldNiceLevel, "failover: the CPU nice `level` of the folds while standing by, 0 (mfsha's own) to 19 (the lowest)")
	log, err := setup(s, args, &c.logs, &c.nats)
	if err != nil {
		return err
	}
	if len(c.nats.conn.URLs) == 0 {
		if err := c.embedded.checkUsers(c.nats.cluster); err != nil {
			return usageError{err}
		}
		if c.embedded.opts.Security.Users != "" && c.nats.conn.NKey == "" {
			return usageError{fmt.Errorf("NATS_USERS is set but NATS_NKEY is not: the shipper authenticates to its own server too (node.nk made by mfsha init)")}
		}
	}
	if c.cfg.Signer, err = c.keys.signer(); err != nil {
		return usageError{err}
	}
	if len(c.keys.trustedKeys) > 0 { // the previous key, during a rotation
		if c.cfg.Trusted, err = c.keys.verifier(); err != nil {
			return usageError{err}
		}
	}
	if c.fo.enabled() {
		return c.runNode(ctx, log)
	}
	kind, err := shipper.ParseKind(c.kind)
	if err != nil {
		return usageError{fmt.Errorf("KIND: %w", err)}
	}
	if kind == 0 {
		if kind, err = shipper.DetectKind(c.data); err != nil {
			return usageError{fmt.Errorf("DATA_PATH: %w", err)}
		}
	}
	c.cfg.DataDir, c.cfg.Kind, c.cfg.Cluster = c.data, kind, c.nats.cluster
	host, _ := os.Hostname()
	c.cfg.Source = host
	if err := c.cfg.Validate(); err != nil {
		return usageError{err}
	}

	reg := prometheus.NewRegistry()
	m := shipper.NewMetrics(reg)
	web := newDaemonHTTP(c.http, c.nats.cluster, false)
	if err := web.serve(ctx, reg, log); err != nil {
		return err
	}
	c.cfg.Live = web.live
	conn, err := connect(ctx, c.nats, &c.embedded, c.state, "mfsha ship "+host, 0, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	web.conn.Store(conn)
	if !c.noSnapshots {
		store, err := openSnapshots(ctx, conn, c.nats.cluster, c.cfg.Replicas, log)
		if err != nil {
			return err
		}
		c.cfg.Snapshots = store.WithSigner(c.cfg.Signer)
	} else {
		c.cfg.Retention = 0
	}
	sh, err := shipper.New(c.cfg, conn.js, log, m)
	if err != nil {
		return usageError{err}
	}
	log.Info("shipping", "data", c.data, "kind", sh.Kind(), "cluster", c.nats.cluster)
	err = sh.Run(ctx)
	switch {
	case errors.Is(err, shipper.ErrGap):
		log.Error("shipping stopped at a changelog gap; nothing was skipped", "err", err)
		return codedError{err, exitGap}
	case errors.Is(err, shipper.ErrUnshippable):
		// Like a gap: nothing after the line can ever be shipped; restarting cannot cure it.
		log.Error("shipping stopped at a line that cannot be shipped; every line before it is shipped", "err", err)
		return codedError{err, exitGap}
	case errors.Is(err, shipper.ErrNotSoleWriter):
		log.Error("another writer appended to the stream; this shipper stops", "err", err)
		return codedError{err, exitFenced}
	}
	return err
}

// runNode runs ship as a failover node that starts as the master.
func (c *shipCommand) runNode(ctx context.Context, log *slog.Logger) error {
	master, err := c.fo.validate(c.nats.cluster, log)
	if err != nil {
		return usageError{err}
	}
	if len(c.nats.conn.URLs) == 0 && len(c.embedded.opts.Routes) == 0 {
		return usageError{fmt.Errorf("VIP is set but NATS_URL and NATS_ROUTES are not: the lease would live in a NATS server on the master's own host and die with it; use a NATS cluster")}
	}
	if c.data != master.DataPath() {
		return usageError{fmt.Errorf("DATA_PATH = %s but MFSMASTER_CONFIG %s has DATA_PATH = %s: with failover they must be the same", c.data, c.fo.masterCfg, master.DataPath())}
	}
	host, _ := os.Hostname()
	c.cfg.DataDir, c.cfg.Kind, c.cfg.Cluster, c.cfg.Source = c.data, shipper.KindMaster, c.nats.cluster, host
	if err := c.cfg.Validate(); err != nil {
		return usageError{err}
	}
	c.standby.Cluster = c.nats.cluster
	if c.standby.Verifier, err = c.keys.verifier(); err != nil { // it stands by when it loses the lease
		return usageError{err}
	}
	if err := c.standby.Validate(); err != nil {
		return usageError{err}
	}
	reg := prometheus.NewRegistry()
	web := newDaemonHTTP(c.http, c.nats.cluster, true)
	if err := web.serve(ctx, reg, log); err != nil {
		return err
	}
	conn, err := connect(ctx, c.nats, &c.embedded, c.state, "mfsha ship "+c.fo.cfg.Name, 0, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	web.conn.Store(conn)
	store, err := openSnapshots(ctx, conn, c.nats.cluster, c.cfg.Replicas, log)
	if err != nil {
		return err
	}
	store = store.WithSigner(c.cfg.Signer).WithVerifier(c.standby.Verifier)
	if !c.noSnapshots {
		c.cfg.Snapshots = store
	} else {
		c.cfg.Retention = 0
	}
	return runNode(ctx, failover.RoleMaster, &c.fo, master, nodeParts{conn: conn, store: store, ship: c.cfg, standby: c.standby, replicas: c.cfg.Replicas, reg: reg, web: web, log: log})
}

// openSnapshots opens the snapshot bucket, retrying while NATS is not ready for it (a cluster
// still electing, or not yet aware of enough peers for the replicas): like every other NATS
// step of the shipper, a passing state of the cluster is waited out, not fatal.
func openSnapshots(ctx context.Context, conn *connection, cluster string, replicas int, log *slog.Logger) (*snapshot.Store, error) {
	for {
		store, err := snapshot.Open(ctx, conn.js, cluster, replicas)
		if err == nil {
			return store, nil
		}
		log.Warn("snapshot bucket not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}
