package failover

import (
	"context"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/jstest"
)

// TestForgetMembers: the members record is read with its revision and deleted only at that
// revision: one written since is kept (the admin saw another list). Once forgotten, it reads as
// none, and the next holder writes a new one.
func TestForgetMembers(t *testing.T) {
	js := jstest.Start(t)
	ctx := context.Background()
	l, err := OpenLease(ctx, js, "c1", time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, rev, err := l.MembersAt(ctx); err != nil || rev != 0 {
		t.Fatalf("new bucket: revision %d, %v; want no record", rev, err)
	}
	first := MembersRecord{Holder: "a", Epoch: 3, Members: []Member{{Name: "a", URL: "http://a:9482"}, {Name: "b"}}}
	if err := l.WriteMembers(ctx, first); err != nil {
		t.Fatal(err)
	}
	r, seen, err := l.MembersAt(ctx)
	if err != nil || seen == 0 || r.Holder != "a" || !r.Lists("b") {
		t.Fatalf("record %+v at %d, %v; want a's, listing b", r, seen, err)
	}
	second := first
	second.Members = []Member{{Name: "a", URL: "http://a:9482"}, {Name: "c"}}
	if err := l.WriteMembers(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := l.ForgetMembers(ctx, seen); err == nil {
		t.Fatal("forgot a record rewritten since it was read")
	}
	r, now, err := l.MembersAt(ctx)
	if err != nil || !r.Lists("c") {
		t.Fatalf("after a refused forget: %+v, %v; want the record listing c", r, err)
	}
	if err := l.ForgetMembers(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, found, err := l.Members(ctx); err != nil || found {
		t.Fatalf("after forget: found %v, %v; want no record", found, err)
	}
	if err := l.WriteMembers(ctx, first); err != nil {
		t.Fatal(err)
	}
	if r, found, err := l.Members(ctx); err != nil || !found || !r.Lists("b") {
		t.Fatalf("written after forget: %+v, %v, %v", r, found, err)
	}
}
