package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/jstest"
)

// `mfsha members` prints the failsafe members record; --forget deletes it only when named
// node for node and no node holds the lease, and after it the record reads as none.
func TestMembersListAndForget(t *testing.T) {
	js := jstest.Start(t)
	ctx := context.Background()
	const cluster = "memb"
	nats := []string{"--nats", js.Conn().ConnectedUrl(), "--cluster", cluster}
	members := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, append(append([]string{"members"}, nats...), args...)...)
	}
	if code, _, stderr := members(); code != exitError || !strings.Contains(stderr, "no failover nodes ran") {
		t.Fatalf("before any node: exit %d, %s; want 1 naming the missing lease", code, stderr)
	}
	lease, err := failover.OpenLease(ctx, js, cluster, time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := members(); code != exitOK || !strings.Contains(stdout, "no members record") {
		t.Fatalf("no record yet: exit %d, %s", code, stdout)
	}
	rec := failover.MembersRecord{Holder: "ma", Epoch: 7, Written: time.Now(),
		Members: []failover.Member{{Name: "ma", URL: "http://ma:9482"}, {Name: "mb", URL: "http://mb:9482"}}}
	if err := lease.WriteMembers(ctx, rec); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := members()
	if code != exitOK || !strings.Contains(stdout, "written by ma at epoch 7") || !strings.Contains(stdout, "http://mb:9482") {
		t.Fatalf("list: exit %d\n%s%s", code, stdout, stderr)
	}

	rev, err := lease.Acquire(ctx, failover.LeaseRecord{Holder: "ma", State: failover.StateMaster}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := members("--forget", "ma,mb"); code != exitError || !strings.Contains(stderr, "held by ma") {
		t.Fatalf("forget with the lease held: exit %d, %s; want 1, refused", code, stderr)
	}
	held, _, err := lease.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx, held, rev); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := members("--forget", "ma"); code != exitError || !strings.Contains(stderr, "lists ma,mb, not ma") {
		t.Fatalf("forget naming one node of two: exit %d, %s; want 1, refused", code, stderr)
	}
	if code, _, stderr := members("--forget", ","); code != exitUsage {
		t.Fatalf("forget naming nobody: exit %d, %s; want 2", code, stderr)
	}
	if _, found, err := lease.Members(ctx); err != nil || !found {
		t.Fatalf("after the refusals: found %v, %v; want the record kept", found, err)
	}
	if code, stdout, stderr := members("--forget", "mb, ma"); code != exitOK || !strings.Contains(stdout, "forgot") {
		t.Fatalf("forget: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, found, err := lease.Members(ctx); err != nil || found {
		t.Fatalf("after forget: found %v, %v; want no record", found, err)
	}
	if code, stdout, _ := members("--forget", "ma,mb"); code != exitOK || !strings.Contains(stdout, "nothing to forget") {
		t.Fatalf("forget again: exit %d, %s", code, stdout)
	}
}
