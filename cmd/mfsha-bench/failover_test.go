package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The client floor is the client's first attempt at or after the new master listens: 0.1 s,
// 1.1 s (a SYN resent into silence), 2.1 s (after a refusal), 4.1 s ...
func TestClientFloor(t *testing.T) {
	for _, tc := range []struct{ listen, want time.Duration }{
		{50 * time.Millisecond, 100 * time.Millisecond},
		{100 * time.Millisecond, 100 * time.Millisecond},
		{500 * time.Millisecond, 1100 * time.Millisecond},
		{1500 * time.Millisecond, 2100 * time.Millisecond},
		{2100 * time.Millisecond, 2100 * time.Millisecond},
		{2200 * time.Millisecond, 4100 * time.Millisecond},
		{20 * time.Second, 20100 * time.Millisecond},
	} {
		if got := clientFloor(tc.listen); got != tc.want {
			t.Errorf("clientFloor(%v) = %v, want %v", tc.listen, got, tc.want)
		}
	}
}

// servedAt finds the first "mfsmaster serves" of a node's log after the fault, not before.
func TestServedAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfsha.log")
	log := `time=2026-12-03T08:34:40.000Z level=INFO msg="mfsmaster serves" pid=1 version=2 took=126ms
time=2026-12-03T08:34:48.500Z level=INFO msg="lease taken" node=mb epoch=3
time=2026-12-03T08:34:48.997Z level=INFO msg="mfsmaster serves" pid=2 version=9 took=300ms
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	fault := time.Date(2026, 12, 3, 8, 34, 47, 0, time.UTC)
	at, err := servedAt(path, fault)
	if err != nil || at.Sub(fault) != 1997*time.Millisecond {
		t.Fatalf("servedAt: %v, %v; want 1.997s after the fault", at.Sub(fault), err)
	}
	if _, err := servedAt(path, fault.Add(time.Minute)); err == nil {
		t.Fatal("servedAt after every line: no error")
	}
}
