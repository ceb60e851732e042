package liveness

import (
	"testing"
	"time"
)

func TestStale(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New()
	m.now = func() time.Time { return now }
	m.Tick("follow")
	m.Tick("fold")
	now = now.Add(20 * time.Second)
	m.Tick("follow")
	if got := m.Stale(30 * time.Second); len(got) != 0 {
		t.Fatalf("stale after 20 s with a 30 s limit: %v", got)
	}
	now = now.Add(15 * time.Second)
	got := m.Stale(30 * time.Second)
	if len(got) != 1 || got[0].Name != "fold" || got[0].Age != 35*time.Second {
		t.Fatalf("got %v, want fold stale for 35 s", got)
	}
	m.Done("fold")
	if got := m.Stale(30 * time.Second); len(got) != 0 {
		t.Fatalf("a loop that is done is not stale: %v", got)
	}
	if l := m.Loops(); len(l) != 1 || l[0].Name != "follow" {
		t.Fatalf("loops: %v", l)
	}
}

func TestNilMonitorIgnoresTicks(t *testing.T) {
	var m *Monitor
	m.Tick("x")
	m.Done("x")
	if m.Loops() != nil || m.Stale(0) != nil {
		t.Fatal("a nil monitor has no loops")
	}
}
