package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// statusCommand is `mfsha status`.
type statusCommand struct {
	nats natsSettings
	logs logSettings
	json bool
}

const statusUsage = `Usage: mfsha status [--nats URL] [--cluster NAME] [--json]

Prints the failover lease (holder, epoch, state) and each node's role, mfsha version and lag,
when the cluster runs failover nodes; then what the cluster's stream holds: each timeline with
its first and last version and time and the mfsha that wrote its newest batch, and the
snapshots. --json prints the same as one JSON object (as the daemons' /status endpoint does).
Without --nats it asks the local embedded server (nats://127.0.0.1:4222).`

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	s := config.New("status", statusUsage)
	c.nats.bind(s)
	c.logs.bind(s)
	s.FlagSet().BoolVar(&c.json, "json", false, "print the status as JSON")
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
	r, err := collectStatus(ctx, conn, c.nats.cluster)
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printStatus(os.Stdout, r)
	return nil
}

// printStatus prints r as text.
func printStatus(w io.Writer, r *statusReport) {
	fmt.Fprintf(w, "%s status\n\n", "mfsha "+r.Mfsha)
	printFailover(w, r)
	printTimelines(w, r.Cluster, r.history.timelines)
	printSnapshots(w, r.Cluster, r.history.snaps)
}

// printFailover prints the lease and the nodes, or that the cluster runs no failover.
func printFailover(w io.Writer, r *statusReport) {
	fo := r.Failover
	if fo == nil {
		fmt.Fprintf(w, "failover: not running (no lease bucket %s)\n\n", stream.LeaseBucket(r.Cluster))
		return
	}
	l := fo.Lease
	switch l.State {
	case "free":
		fmt.Fprintf(w, "lease: FREE (no master holds it)\n")
	case "released":
		to := "any standby"
		if l.To != "" {
			to = l.To
		}
		fmt.Fprintf(w, "lease: released by %s at %s (%s), for %s; final version %d\n", l.Holder, l.Since.Format(time.RFC3339), l.Reason, to, l.Final)
	default:
		fmt.Fprintf(w, "lease: held by %s (%s), epoch %d, %s since %s\n", l.Holder, l.Addr, l.Epoch, l.State, l.Since.Format(time.RFC3339))
	}
	releases := map[string][]string{} // MooseFS release -> nodes
	for _, n := range fo.Nodes {
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
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nNODE\tADDRESS\tROLE\tMFSHA\tMOOSEFS\tNEXT VERSION\tMATERIALIZED\tLAG (LINES)\tSEEN")
	for _, n := range fo.Nodes {
		lag := "-"
		if n.LagLines != nil {
			lag = fmt.Sprint(*n.LagLines)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.1fs ago\n", n.Name, n.Addr, n.Role, cmp.Or(n.Mfsha, "-"), cmp.Or(n.MooseFS, "-"),
			n.NextVersion, n.Materialized, lag, n.SeenAgo)
	}
	tw.Flush()
	for _, n := range fo.Nodes {
		if f := n.Fold; f != nil {
			fmt.Fprintf(w, "fold on %s: last %.1f s for %d lines (mfsmaster %.1f s, CPU %.1f s, peak RSS %d MB); replay %.1f µs/line, pending replay %.2f s\n",
				n.Name, f.Seconds, f.Lines, f.MfsmasterSeconds, f.CPUSeconds, f.PeakRSS>>20, f.PerLine*1e6, f.PendingReplay)
		}
	}
	fmt.Fprintln(w)
}

func printTimelines(w io.Writer, cluster string, tls []stream.Timeline) {
	fmt.Fprintf(w, "cluster %s, stream %s\n\n", cluster, stream.StreamName(cluster))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIMELINE\tPARENT\tFIRST VERSION\tFIRST TIME\tLAST VERSION\tLAST TIME\tBATCHES\tMETAID\tWRITER")
	for _, t := range tls {
		parent, writer := "-", "-"
		if t.Parent != 0 {
			parent = fmt.Sprint(t.Parent)
		}
		if t.Writer != "" {
			writer = t.Writer
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%s\t%d\t%d\t%s\n", t.Timeline, parent, t.FirstVersion, fmtTime(t.FirstTime),
			t.LastVersion, fmtTime(t.LastTime), t.Batches, t.MetaID, writer)
	}
	tw.Flush()
	for _, t := range tls {
		if t.BadSeq != 0 {
			fmt.Fprintf(w, "timeline %d: stream message %d is unusable, the range above ends before it: %s\n", t.Timeline, t.BadSeq, t.BadErr)
		}
	}
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
