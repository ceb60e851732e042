package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/restorer"
)

// TestStatusShowsFoldCost: what a standby node publishes about its last fold reaches
// `mfsha status` (a line per standby) and --json (the node's "fold").
func TestStatusShowsFoldCost(t *testing.T) {
	js := jstest.Start(t)
	ctx := context.Background()
	lease, err := failover.OpenLease(ctx, js, "fc", time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	fc := restorer.FoldCost{Seconds: 44.2, MfsmasterSeconds: 43.9, CPUSeconds: 41.5, PeakRSS: 2600 << 20, Lines: 50000,
		PerLine: 2.3e-6, PendingReplay: 0.75}
	if err := lease.PutNode(ctx, failover.NodeStatus{Name: "n2", Role: string(failover.RoleStandby), Version: 7, Materialized: 5, Fold: &fc}); err != nil {
		t.Fatal(err)
	}
	if err := lease.PutNode(ctx, failover.NodeStatus{Name: "n3", Role: string(failover.RoleStandby), Version: 7}); err != nil {
		t.Fatal(err)
	}
	fo, err := collectFailover(ctx, js, "fc")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printFailover(&out, &statusReport{Cluster: "fc", Failover: fo})
	want := "fold on n2: last 44.2 s for 50000 lines (mfsmaster 43.9 s, CPU 41.5 s, peak RSS 2600 MB); replay 2.3 µs/line, pending replay 0.75 s"
	if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "fold on n3") {
		t.Fatalf("status:\n%s\nwant the line %q for n2 only", out.String(), want)
	}
	b, err := json.Marshal(fo)
	if err != nil {
		t.Fatal(err)
	}
	var back failoverReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, n := range back.Nodes {
		switch {
		case n.Name == "n2" && (n.Fold == nil || *n.Fold != fc):
			t.Fatalf("--json for n2: fold %+v, want %+v\n%s", n.Fold, fc, b)
		case n.Name == "n3" && n.Fold != nil:
			t.Fatalf("--json for n3 (no fold yet): fold %+v, want none", n.Fold)
		}
	}
	if !bytes.Contains(b, []byte(`"replay_seconds_per_line"`)) {
		t.Fatalf("--json lacks the fold's fields: %s", b)
	}
}
