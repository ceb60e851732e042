package main

import (
	"context"
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
}

const statusUsage = `Usage: mfsha status [--nats URL] [--cluster NAME]

Prints what the cluster's stream holds: each timeline with its first and last version and
time, and the snapshots. Without --nats it asks the local embedded server (nats://127.0.0.1:4222).`

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
	if h.store, err = snapshot.Open(ctx, conn.js, cluster, 1); err != nil {
		return h, err
	}
	h.snaps, err = h.store.List(ctx)
	return h, err
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
}

func printSnapshots(w io.Writer, cluster string, snaps []snapshot.Snapshot) {
	fmt.Fprintf(w, "\nsnapshots (bucket %s): %d\n\n", stream.SnapshotBucket(cluster), len(snaps))
	if len(snaps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIMELINE\tVERSION\tTIME\tSIZE\tSTORED\tSOURCE")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%s\n", s.Timeline, s.Version, fmtTime(s.Time), s.Size, s.CompressedSize, s.Source)
	}
	tw.Flush()
}

func fmtTime(unix int64) string {
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}
