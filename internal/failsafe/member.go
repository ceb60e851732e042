package failsafe

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of Promiser.Answer; match with errors.Is.
var (
	// ErrOwnHold: the request names this node as the holder (Patroni's "Running as a leader").
	ErrOwnHold = errors.New("this node is the holder")
	// ErrHolding: this node holds the lease itself.
	ErrHolding = errors.New("this node holds the lease")
	// ErrStaleEpoch: this node has seen a newer epoch than the request's: the old holder must
	// fence, not be covered.
	ErrStaleEpoch = errors.New("a newer epoch exists")
	// ErrOtherCluster: the request is for another cluster.
	ErrOtherCluster = errors.New("another cluster's request")
	// ErrReplay: the request's sequence number is not above the last one answered for its
	// epoch. A hold is signed but carries no time: without this rule, one recorded hold
	// replayed by anyone on the network would renew the promise for ever and block every
	// failover after the holder died.
	ErrReplay = errors.New("a replayed or reordered request")
)

// Promiser is a failover node's side of failsafe: it answers holds, and it tells whether the
// node may take the lease. It is safe for concurrent use.
//
// The rule it keeps: after answering a Hold received at r, the node takes no lease other than a
// released one before r + Hold (a released lease is written by a holder that has fenced).
type Promiser struct {
	cluster, name string
	hold          time.Duration // the longest promise given: FAILSAFE_HOLD

	mu    sync.Mutex
	until time.Time // no take before this (monotonic)
	epoch uint64    // the newest epoch seen, from the lease or from holds
	seq   uint64    // the last request answered for epoch
}

// NewPromiser starts a member's side. start is when the process started: a restarted process
// may have promised before it died, so it takes nothing for hold (FAILSAFE_HOLD, the promise
// this cluster's holders ask for) from start.
func NewPromiser(cluster, name string, hold time.Duration, start time.Time) *Promiser {
	return &Promiser{cluster: cluster, name: name, hold: hold, until: start.Add(hold)}
}

// ObserveEpoch records the epoch of a lease record the node has read. Holds of older epochs are
// refused from then on.
func (p *Promiser) ObserveEpoch(epoch uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if epoch > p.epoch {
		p.epoch, p.seq = epoch, 0
	}
}

// Answer promises what h asks, received at received (call time.Now() when the request arrived,
// before any other work), unless the node holds the lease (holding), h names this node, h is for
// another cluster, asks longer than this node's FAILSAFE_HOLD (a restarted node waits only that
// long), or a newer epoch was seen. The promise is in force before Answer returns:
// send the answer only after.
func (p *Promiser) Answer(h Hold, received time.Time, holding bool) (Promise, error) {
	if err := h.check(); err != nil {
		return Promise{}, fmt.Errorf("%w: %w", ErrMessage, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case h.Cluster != p.cluster:
		return Promise{}, fmt.Errorf("hold for cluster %q, this node is in %q: %w", h.Cluster, p.cluster, ErrOtherCluster)
	case h.Hold > p.hold:
		return Promise{}, fmt.Errorf("hold from %s for %s, longer than this node's FAILSAFE_HOLD %s: %w", h.Holder, h.Hold, p.hold, ErrMessage)
	case h.Holder == p.name:
		return Promise{}, fmt.Errorf("hold from %s: %w", h.Holder, ErrOwnHold)
	case holding:
		return Promise{}, fmt.Errorf("hold from %s (epoch %d): %w", h.Holder, h.Epoch, ErrHolding)
	case h.Epoch < p.epoch:
		return Promise{}, fmt.Errorf("hold from %s for epoch %d, epoch %d seen: %w", h.Holder, h.Epoch, p.epoch, ErrStaleEpoch)
	case h.Epoch == p.epoch && h.Seq <= p.seq:
		return Promise{}, fmt.Errorf("hold from %s for epoch %d, request %d after %d: %w", h.Holder, h.Epoch, h.Seq, p.seq, ErrReplay)
	}
	p.epoch, p.seq = h.Epoch, h.Seq
	if end := received.Add(h.Hold); end.After(p.until) {
		p.until = end
	}
	return Promise{Cluster: h.Cluster, Member: p.name, Holder: h.Holder, Epoch: h.Epoch, Seq: h.Seq, Hold: h.Hold}, nil
}

// MayTake reports whether the node may take the lease at now: always a released one, an
// expired one only once every promise it made has ended. (Whether the lease is expired, and
// whether the node is listed among the members, the caller checks against NATS.)
func (p *Promiser) MayTake(now time.Time, released bool) bool {
	if released {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !now.Before(p.until)
}

// Until is when the node's last promise ends.
func (p *Promiser) Until() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.until
}
