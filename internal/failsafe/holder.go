package failsafe

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Coverage is the holder's side of failsafe: for each member, until when its promises cover
// the holder. It is safe for concurrent use.
//
// The rule: the holder may serve without a renewed lease at now only if now + StopTimeout is
// not after Until; each member's coverage is the send time of the last request it answered plus
// Covered(Hold) (see Covered for why that ends before the member's promise).
type Coverage struct {
	cfg Config

	mu      sync.Mutex
	members map[string]*member
}

type member struct {
	sent    map[uint64]time.Time // request seq -> when it was sent (recent ones)
	covered time.Time            // zero until the first answer
}

// keepSent bounds the send times remembered per member: an answer to an older request, late
// beyond that many rounds, is ignored (it would cover less than a newer one anyway).
const keepSent = 64

// NewCoverage starts the holder's side with cfg (validated by the caller).
func NewCoverage(cfg Config) *Coverage {
	return &Coverage{cfg: cfg, members: map[string]*member{}}
}

// SetMembers sets the nodes whose promises are needed: every failover node that may take the
// lease (those of the last members list the holder wrote or tried to write). A new member
// starts uncovered; a member dropped loses its coverage.
func (c *Coverage) SetMembers(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]*member, len(names))
	for _, n := range names {
		if m, ok := c.members[n]; ok {
			next[n] = m
		} else {
			next[n] = &member{sent: map[uint64]time.Time{}}
		}
	}
	c.members = next
}

// Sent records that request seq was sent to member at at: call it just before sending.
func (c *Coverage) Sent(name string, seq uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[name]
	if !ok {
		return
	}
	m.sent[seq] = at
	if len(m.sent) > keepSent {
		seqs := make([]uint64, 0, len(m.sent))
		for s := range m.sent {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		for _, s := range seqs[:len(seqs)-keepSent] {
			delete(m.sent, s)
		}
	}
}

// Answered counts p, an opened Promise answering a request of this holder: it must echo a
// request recorded with Sent, with the hold asked (cfg.Hold). Anything else is an error and
// covers nothing.
func (c *Coverage) Answered(p Promise) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[p.Member]
	if !ok {
		return fmt.Errorf("promise from %s: not a member", p.Member)
	}
	at, ok := m.sent[p.Seq]
	if !ok {
		return fmt.Errorf("promise from %s for request %d: no such request pending", p.Member, p.Seq)
	}
	if p.Hold != c.cfg.Hold {
		return fmt.Errorf("promise from %s for %s, %s asked", p.Member, p.Hold, c.cfg.Hold)
	}
	if end := at.Add(Covered(p.Hold)); end.After(m.covered) {
		m.covered = end
	}
	return nil
}

// Until is when the first member's coverage ends; ok is false while some member has never
// answered. Without members (no other node can take the lease) it is ok and far in the future.
func (c *Coverage) Until() (until time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.members) == 0 {
		return time.Now().Add(100 * 365 * 24 * time.Hour), true
	}
	first := true
	for _, m := range c.members {
		if m.covered.IsZero() {
			return time.Time{}, false
		}
		if first || m.covered.Before(until) {
			until, first = m.covered, false
		}
	}
	return until, true
}

// MayServe reports whether the holder may go on serving at now on promises alone: every member
// covers it until at least now + StopTimeout, so that a fence started now ends in time.
func (c *Coverage) MayServe(now time.Time) bool {
	until, ok := c.Until()
	return ok && !now.Add(c.cfg.StopTimeout).After(until)
}

// ServeUntil is when the holder, serving on promises alone, must start fencing: when its
// coverage would no longer last through the fence (Until − StopTimeout), or earlier, once the
// freshest answer of some member is older than one missed round allows (its request sent
// Every + 2·Timeout ago). ok is false while a member never answered.
//
// Why the earlier bound: the link that carries the promises usually carries the member's
// metalogger too. When it fails, every line the holder's master writes from then on exists on
// the holder alone (NATS takes nothing either), and a member that takes the lease after its
// promise serves without them. Safety needs only the first bound; the second shortens that
// window from Covered(Hold) − StopTimeout (1.49 s by default) to Every + 2·Timeout (0.8 s).
func (c *Coverage) ServeUntil() (time.Time, bool) {
	until, ok := c.Until()
	if !ok {
		return time.Time{}, false
	}
	lastAsked := until.Add(-Covered(c.cfg.Hold)) // the oldest of the members' last answered requests
	return minTime(until.Add(-c.cfg.StopTimeout), lastAsked.Add(c.cfg.Every+2*c.cfg.Timeout)), true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
