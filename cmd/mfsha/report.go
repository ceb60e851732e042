package main

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
)

// statusReport is what `mfsha status` shows, and the JSON of `mfsha status --json` and of
// the daemons' /status endpoint. Field names are part of the interface: add, never rename.
type statusReport struct {
	Mfsha     string           `json:"mfsha"` // version of the mfsha that made the report
	Cluster   string           `json:"cluster"`
	Stream    string           `json:"stream"`
	Failover  *failoverReport  `json:"failover"` // null when the cluster runs no failover nodes
	Timelines []timelineReport `json:"timelines"`
	Bucket    string           `json:"snapshot_bucket"`
	Snapshots []snapshotReport `json:"snapshots"`
	// history as read, for the text output
	history history
}

type failoverReport struct {
	LeaseBucket string       `json:"lease_bucket"`
	Lease       leaseReport  `json:"lease"`
	Nodes       []nodeReport `json:"nodes"`
}

type leaseReport struct {
	State  string    `json:"state"` // free, promoting, master or released
	Holder string    `json:"holder,omitempty"`
	Addr   string    `json:"addr,omitempty"`
	Epoch  uint64    `json:"epoch,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Final  uint64    `json:"final,omitempty"`  // released: the last version shipped
	To     string    `json:"to,omitempty"`     // released: the only node that may take it
	Reason string    `json:"reason,omitempty"` // released: why
}

type nodeReport struct {
	Name         string  `json:"name"`
	Addr         string  `json:"addr,omitempty"`
	Role         string  `json:"role"`
	Mfsha        string  `json:"mfsha,omitempty"`   // the node's mfsha version, when it says it
	MooseFS      string  `json:"moosefs,omitempty"` // the release of the node's mfsmaster
	NextVersion  uint64  `json:"next_version"`
	Materialized uint64  `json:"materialized,omitempty"`
	LagLines     *int64  `json:"lag_lines,omitempty"` // standby: lines behind the master; null when unknown
	SeenAgo      float64 `json:"seen_seconds_ago"`
	// Fold: a standby's last fold's cost and its replay estimate (restorer.FoldCost).
	Fold *restorer.FoldCost `json:"fold,omitempty"`
}

type timelineReport struct {
	Timeline     uint64    `json:"timeline"`
	Parent       uint64    `json:"parent,omitempty"`
	FirstVersion uint64    `json:"first_version"`
	FirstTime    time.Time `json:"first_time"`
	LastVersion  uint64    `json:"last_version"`
	LastTime     time.Time `json:"last_time"`
	Batches      uint64    `json:"batches"`
	MetaID       uint64    `json:"metaid,omitempty"`
	BadSeq       uint64    `json:"bad_seq,omitempty"` // the first unusable message: the range ends before it
	BadErr       string    `json:"bad_error,omitempty"`
	Writer       string    `json:"writer,omitempty"` // the mfsha that wrote the newest batch
}

type snapshotReport struct {
	Timeline       uint64    `json:"timeline"`
	Version        uint64    `json:"version"`
	Time           time.Time `json:"time"`
	Size           int64     `json:"size"`
	CompressedSize int64     `json:"stored_size"`
	MooseFS        string    `json:"moosefs,omitempty"` // the release that wrote it
	Source         string    `json:"source,omitempty"`
}

// collectStatus reads the lease, the nodes, the timelines and the snapshots of cluster.
func collectStatus(ctx context.Context, conn *connection, cluster string) (*statusReport, error) {
	r := &statusReport{Mfsha: buildinfo.Get().Version, Cluster: cluster, Stream: stream.StreamName(cluster),
		Bucket: stream.SnapshotBucket(cluster), Timelines: []timelineReport{}, Snapshots: []snapshotReport{}}
	fo, err := collectFailover(ctx, conn.js, cluster)
	if err != nil {
		return nil, err
	}
	r.Failover = fo
	if r.history, err = readHistory(ctx, conn, cluster); err != nil {
		return nil, err
	}
	for _, t := range r.history.timelines {
		r.Timelines = append(r.Timelines, timelineReport{Timeline: t.Timeline, Parent: t.Parent, FirstVersion: t.FirstVersion,
			FirstTime: time.Unix(t.FirstTime, 0).UTC(), LastVersion: t.LastVersion, LastTime: time.Unix(t.LastTime, 0).UTC(),
			Batches: t.Batches, MetaID: t.MetaID, BadSeq: t.BadSeq, BadErr: t.BadErr, Writer: t.Writer})
	}
	for _, s := range r.history.snaps {
		r.Snapshots = append(r.Snapshots, snapshotReport{Timeline: s.Timeline, Version: s.Version, Time: time.Unix(s.Time, 0).UTC(),
			Size: s.Size, CompressedSize: s.CompressedSize, MooseFS: s.MooseFS, Source: s.Source})
	}
	return r, nil
}

// collectFailover reads the lease and the nodes; nil when the cluster runs no failover.
func collectFailover(ctx context.Context, js jetstream.JetStream, cluster string) (*failoverReport, error) {
	lease, err := failover.OpenLeaseReadOnly(ctx, js, cluster)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, rev, err := lease.Read(ctx)
	if err != nil {
		return nil, err
	}
	fo := &failoverReport{LeaseBucket: stream.LeaseBucket(cluster), Nodes: []nodeReport{}}
	switch {
	case rev == 0:
		fo.Lease = leaseReport{State: "free"}
	case rec.State == failover.StateReleased:
		fo.Lease = leaseReport{State: rec.State, Holder: rec.Holder, Since: rec.Since, Final: rec.Final, To: rec.To, Reason: rec.Reason}
	default:
		fo.Lease = leaseReport{State: rec.State, Holder: rec.Holder, Addr: rec.Addr, Epoch: rec.Epoch, Since: rec.Since}
	}
	nodes, err := lease.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var masterVersion uint64
	for _, n := range nodes {
		if n.Role == string(failover.RoleMaster) && n.Name == rec.Holder {
			masterVersion = n.Version
		}
	}
	for _, n := range nodes {
		nr := nodeReport{Name: n.Name, Addr: n.Addr, Role: n.Role, Mfsha: n.Mfsha, MooseFS: n.MooseFS, NextVersion: n.Version, Materialized: n.Materialized,
			SeenAgo: time.Since(n.Updated).Round(100 * time.Millisecond).Seconds(), Fold: n.Fold}
		if n.Role == string(failover.RoleStandby) && masterVersion > 0 {
			lag := int64(masterVersion) - int64(n.Version)
			nr.LagLines = &lag
		}
		fo.Nodes = append(fo.Nodes, nr)
	}
	return fo, nil
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
