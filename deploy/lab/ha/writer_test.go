package ha

import (
	"testing"
	"time"
)

// TestStalls: the gaps counted are those from the last completion at or before the fault,
// between the completions in the window, and to the window's end (cut at the writer's end).
func TestStalls(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := WriterResult{Start: at(0), End: at(10000)}
	for _, ms := range []int{0, 10, 20, 30, 1530, 1540, 1550, 1800, 1810, 4810, 4820} {
		r.Times = append(r.Times, at(ms))
	}
	// Fault at 25 ms, window 5 s: gaps 30-20=10 (from the last completion before the
	// fault), 1500, 10, 10, 250, 10, 3000, 10, then 5025-4820=205 to the window's end.
	s := r.Stalls(at(25), 5*time.Second)
	if s.Longest != 3000*time.Millisecond || s.Outages != 4 || s.Blocked != (1500+250+3000+205)*time.Millisecond || s.Writes != 8 {
		t.Errorf("Stalls = %+v; want longest 3s, 4 outages, blocked 4.955s, 8 writes", s)
	}
	// A window past the writer's end is cut there: 10000-4820 is one more outage.
	s = r.Stalls(at(4815), time.Hour)
	if s.Window != 10000*time.Millisecond-4815*time.Millisecond || s.Longest != 5180*time.Millisecond || s.Outages != 1 || s.Writes != 1 {
		t.Errorf("Stalls past the end = %+v; want the window cut at the end, one 5.18s outage", s)
	}
	// No completion at all after the fault: the whole window is one outage.
	s = WriterResult{Start: at(0), End: at(2000), Times: []time.Time{at(0)}}.Stalls(at(500), time.Second)
	if s.Longest != 1500*time.Millisecond || s.Outages != 1 || s.Writes != 0 {
		t.Errorf("Stalls without completions = %+v; want one 1.5s outage", s)
	}
}
