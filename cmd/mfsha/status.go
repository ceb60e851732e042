package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// statusCommand is `mfsha status`.
type statusCommand struct {
	nats natsSettings
	logs logSettings
}

const statusUsage = `Usage: mfsha status [--nats URL] [--cluster NAME]

Prints the failover lease (holder, epoch, state) and each node's role and lag, when the
cluster runs failover nodes; then what the cluster's stream holds: each timeline with its
first and last version and time, and the snapshots. Without --nats it asks the local embedded server (nats://127.0.0.1:4222).`

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	s := config.New("status", statusUsage)
	c.nats.bind(s)
	c.logs.bind(s)
	log, err := setup(s, args, &c.logs, &c.nats)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, c.nats, nil, "", "mfsha status", 30*time.Second, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := printLease(ctx, os.Stdout, conn, c.nats.cluster); err != nil {
		return err
	}
	h, err := readHistory(ctx, conn, c.nats.cluster)
	if err != nil {
		return err
	}
	printTimelines(os.Stdout, c.nats.cluster, h.timelines)
	printSnapshots(os.Stdout, c.nats.cluster, h.snaps)
	return nil
}

// history is what a cluster's stream and bucket hold.
type history struct {
	timelines []stream.Timeline
	store     *snapshot.Store
	snaps     []snapshot.Snapshot
}

// readHistory reads the timelines of the stream and the list of snapshots.
func readHistory(ctx context.Context, conn *connection, cluster string) (history, error) {
	var h history
	var err error
	if h.timelines, err = stream.Timelines(ctx, conn.js, cluster); err != nil {
		return h, err
	}
	// Read only: a reader may not create the bucket, and none means no snapshot yet.
	h.store, err = snapshot.OpenReadOnly(ctx, conn.js, cluster)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	h.snaps, err = h.store.List(ctx)
	return h, err
}

// printLease prints the lease and the nodes, or that the cluster runs no failover.
func printLease(ctx context.Context, w io.Writer, conn *connection, cluster string) error {
	lease, err := failover.OpenLeaseReadOnly(ctx, conn.js, cluster)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		fmt.Fprintf(w, "failover: not running (no lease bucket %s)\n\n", stream.LeaseBucket(cluster))
		return nil
	}
	if err != nil {
		return err
	}
	rec, rev, err := lease.Read(ctx)
	if err != nil {
		return err
	}
	switch {
	case rev == 0:
		fmt.Fprintf(w, "lease: FREE (no master holds it)\n")
	case rec.State == failover.StateReleased:
		to := "any standby"
		if rec.To != "" {
			to = rec.To
		}
		fmt.Fprintf(w, "lease: released by %s at %s (%s), for %s; final version %d\n", rec.Holder, rec.Since.Format(time.RFC3339), rec.Reason, to, rec.Final)
	default:
		fmt.Fprintf(w, "lease: held by %s (%s), epoch %d, %s since %s\n", rec.Holder, rec.Addr, rec.Epoch, rec.State, rec.Since.Format(time.RFC3339))
	}
	nodes, err := lease.Nodes(ctx)
	if err != nil {
		return err
	}
	var masterVersion uint64
	for _, n := range nodes {
		if n.Role == string(failover.RoleMaster) && n.Name == rec.Holder {
			masterVersion = n.Version
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	releases := map[string][]string{} // MooseFS release -> nodes
	for _, n := range nodes {
		releases[n.MooseFS] = append(releases[n.MooseFS], n.Name)
	}
	switch {
	case len(releases) == 1:
		for r := range releases {
			fmt.Fprintf(w, "MooseFS: %s (every node's mfsmaster)\n", cmp.Or(r, "unknown"))
		}
	case len(releases) > 1:
		fmt.Fprintf(w, "MooseFS: the nodes' mfsmaster releases differ: %v; a standby older than the master cannot fold its metadata\n", releases)
	}
	fmt.Fprintln(tw, "\nNODE\tADDRESS\tROLE\tMOOSEFS\tNEXT VERSION\tMATERIALIZED\tLAG (LINES)\tSEEN")
	for _, n := range nodes {
		lag := "-"
		if n.Role == string(failover.RoleStandby) && masterVersion > 0 {
			lag = fmt.Sprint(int64(masterVersion) - int64(n.Version))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s ago\n", n.Name, n.Addr, n.Role, cmp.Or(n.MooseFS, "-"), n.Version, n.Materialized, lag, time.Since(n.Updated).Round(100*time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintln(w)
	return nil
}

func printTimelines(w io.Writer, cluster string, tls []stream.Timeline) {
	fmt.Fprintf(w, "cluster %s, stream %s\n\n", cluster, stream.StreamName(cluster))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIMELINE\tPARENT\tFIRST VERSION\tFIRST TIME\tLAST VERSION\tLAST TIME\tBATCHES\tMETAID")
	for _, t := range tls {
		parent := "-"
		if t.Parent != 0 {
			parent = fmt.Sprint(t.Parent)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%s\t%d\t%d\n", t.Timeline, parent, t.FirstVersion, fmtTime(t.FirstTime),
			t.LastVersion, fmtTime(t.LastTime), t.Batches, t.MetaID)
	}
	tw.Flush()
	for _, t := range tls {
		if t.BadSeq != 0 {
			fmt.Fprintf(w, "timeline %d: stream message %d is unusable, the range above ends before it: %s\n", t.Timeline, t.BadSeq, t.BadErr)
		}
	}
}

func printSnapshots(w io.Writer, cluster string, snaps []snapshot.Snapshot) {
	fmt.Fprintf(w, "\nsnapshots (bucket %s): %d\n\n", stream.SnapshotBucket(cluster), len(snaps))
	if len(snaps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIMELINE\tVERSION\tTIME\tSIZE\tSTORED\tMOOSEFS\tSOURCE")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%s\t%s\n", s.Timeline, s.Version, fmtTime(s.Time), s.Size, s.CompressedSize, cmp.Or(s.MooseFS, "-"), s.Source)
	}
	tw.Flush()
}

func fmtTime(unix int64) string {
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}
