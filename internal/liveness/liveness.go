// Package liveness tells whether a daemon's loops still turn: each loop ticks its name on
// every turn, and a loop whose last tick is older than a limit is stale (the daemon runs but
// hangs). It feeds the /health endpoint.
package liveness

import (
	"sort"
	"sync"
	"time"
)

// Monitor records the last tick of each running loop. A nil *Monitor ignores ticks, so that
// components take one optionally. Safe for concurrent use.
type Monitor struct {
	mu    sync.Mutex
	loops map[string]time.Time
	now   func() time.Time
}

// New returns a Monitor with no loops.
func New() *Monitor { return &Monitor{loops: map[string]time.Time{}, now: time.Now} }

// Tick records that loop turned now. A loop ticks at least once per turn, before it waits.
func (m *Monitor) Tick(loop string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.loops[loop] = m.now()
	m.mu.Unlock()
}

// Done removes loop: it ended on purpose (a role change, a stop) and is no longer expected to
// tick. A loop that ended with its component's failure calls it too; the failure is reported
// by the component, not as staleness.
func (m *Monitor) Done(loop string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.loops, loop)
	m.mu.Unlock()
}

// Loop is one loop's time since its last tick.
type Loop struct {
	Name string        `json:"name"`
	Age  time.Duration `json:"age_ns"`
}

// Loops returns every running loop with its age, by name.
func (m *Monitor) Loops() []Loop {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Loop, 0, len(m.loops))
	for name, at := range m.loops {
		out = append(out, Loop{Name: name, Age: now.Sub(at)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stale returns the loops whose last tick is older than after, by name.
func (m *Monitor) Stale(after time.Duration) []Loop {
	var out []Loop
	for _, l := range m.Loops() {
		if l.Age > after {
			out = append(out, l)
		}
	}
	return out
}
