package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mfsha/mfsha/internal/failsafe"
	"github.com/mfsha/mfsha/internal/sign"
)

// Failsafe is what a node needs to keep a healthy master through a NATS election
// (DESIGN.md, "Failsafe"): the settings, this node's endpoint as the others reach it, and the
// cluster's keys, which sign the holds and promises.
type Failsafe struct {
	Config   failsafe.Config
	URL      string // this node's hold endpoint, e.g. http://10.0.0.2:9482/failsafe/hold
	Signer   *sign.Signer
	Verifier *sign.Verifier
}

// maxFailsafeMessage bounds a hold or promise read from the network.
const maxFailsafeMessage = 4096

// FailsafeHandler answers the holder's holds (POST /failsafe/hold) with signed promises, and
// keeps its connection lists (POST /failsafe/conns, tickles.go). Serve
// it on FAILSAFE_LISTEN; it needs Deps.Failsafe.
//
// Safety: the promise is in force (Promiser.Answer) before the answer is written, and the
// request's arrival time, taken first, is where the promise starts.
func (n *Node) FailsafeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /failsafe/hold", func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFailsafeMessage))
		if err != nil {
			http.Error(w, "failsafe hold: "+err.Error(), http.StatusBadRequest)
			return
		}
		h, err := failsafe.OpenHold(n.d.Failsafe.Verifier, body)
		if err != nil {
			n.m.FailsafeRefused.Inc()
			n.log.Warn("failsafe: a hold was refused", "from", r.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		p, err := n.promiser.Answer(h, received, n.holding())
		if err != nil {
			n.m.FailsafeRefused.Inc()
			n.log.Debug("failsafe: no promise", "holder", h.Holder, "epoch", h.Epoch, "err", err)
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		b, err := failsafe.SealPromise(n.d.Failsafe.Signer, p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n.m.FailsafePromises.Inc()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /failsafe/conns", n.handleConns) // tickles.go
	return mux
}

// newCoverage is a new term's failsafe coverage; nil without failsafe.
func (n *Node) newCoverage() *failsafe.Coverage {
	if n.d.Failsafe == nil {
		return nil
	}
	return failsafe.NewCoverage(n.d.Failsafe.Config)
}

// holding tells whether this node serves: it promises nothing then. (While it promotes, holds
// of the old holder are refused for their epoch: ObserveEpoch follows the take.)
func (n *Node) holding() bool {
	return n.cur.Load() != nil || n.Role() == RoleMaster
}

// mayTakeExpired tells whether this node may take a lease nobody holds (expired, or never
// taken), and why not. Read the lease first, then call this: the members record is read
// after the lease was seen expired, so a removal the holder committed before its last renewal
// is seen (DESIGN.md, "Members").
//
// The rules: no take while a promise made to a holder is in force (that holder may be serving
// on it; a process just started waits FAILSAFE_HOLD, it may have promised before); and none by
// a node that the last holder did not list as a member (it was not asked for promises, so it
// cannot know whether the holder serves on the others'). A cluster whose holders never wrote a
// members record has no holder serving on promises: any node may take.
func (n *Node) mayTakeExpired(ctx context.Context) (bool, string) {
	r, found, err := n.d.Lease.Members(ctx)
	switch {
	case err != nil:
		return false, "the failsafe members are not readable: " + err.Error()
	case !found:
		// No holder ever serves on promises before its members record is committed (armed),
		// and the record is never deleted but by an admin: no promise made matters.
		return true, ""
	case !r.Lists(n.cfg.Name):
		return false, fmt.Sprintf("the last holder (%s, epoch %d) did not list this node among the failsafe members: one it listed must take the lease", r.Holder, r.Epoch)
	}
	if until := n.promiser.Until(); time.Now().Before(until) {
		return false, fmt.Sprintf("promised the holder not to take the lease for %v more", time.Until(until).Round(time.Millisecond))
	}
	return true, ""
}

// members is the holder's bookkeeping of the members record during a term.
//
// Safety (who must promise): every node that may take an expired lease while this holder
// serves on promises, i.e. every node listed in a members record a reader may see after the
// lease expired: the one this holder last committed, one it is writing, one it replaced until
// a renewal followed the replacement (a reader after the expiry reads after that renewal),
// and, before this holder's first record and a renewal after it, the previous holder's, which
// it does not know: so the keeper is armed (may serve on promises) only from then on.
//
// Only the sidecar (updateMembers) changes it; askHolds reads ask, which is atomic so that a
// NATS call that hangs in the sidecar never delays a hold.
type members struct {
	committed []Member                 // the last record this holder wrote
	ackedAt   time.Time                // when that write was acknowledged
	removal   bool                     // that write removed nodes; they are asked until a renewal followed it
	ask       atomic.Pointer[[]Member] // whom to ask: the coverage's member set, with addresses
}

// setAsk makes the nodes of list other than this one the nodes asked and the coverage's
// member set.
func (n *Node) setAsk(t *term, list []Member) {
	var ask []Member
	for _, m := range list {
		if m.Name != n.cfg.Name && !slices.ContainsFunc(ask, func(o Member) bool { return o.Name == m.Name }) {
			ask = append(ask, m)
		}
	}
	t.cov.SetMembers(memberNames(ask))
	t.members.ask.Store(&ask)
}

// updateMembers publishes the members (every node with a status, this one included) when they
// changed, keeps whom the holder asks to what the rule above needs, and arms the keeper.
func (n *Node) updateMembers(ctx context.Context, t *term) {
	if t.cov == nil {
		return
	}
	ms := &t.members
	if !ms.ackedAt.IsZero() && t.k.lastRenewal().After(ms.ackedAt) {
		if ms.removal {
			ms.removal = false
			n.setAsk(t, ms.committed)
		}
		if t.k.armFailsafe() {
			n.log.Info("failsafe armed: the members record is committed and the lease renewed after it", "members", memberNames(ms.committed))
		}
	}
	nodes, err := n.d.Lease.Nodes(ctx)
	if err != nil {
		n.log.Debug("failsafe: node statuses not readable", "err", err)
		return
	}
	list := []Member{{Name: n.cfg.Name, URL: n.failsafeURL()}}
	for _, s := range nodes {
		if s.Name != n.cfg.Name {
			list = append(list, Member{Name: s.Name, URL: s.Failsafe})
		}
	}
	slices.SortFunc(list, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	if !ms.ackedAt.IsZero() && sameMembers(list, ms.committed) {
		return
	}
	n.setAsk(t, append(slices.Clone(ms.committed), list...))
	wctx, cancel := context.WithTimeout(ctx, n.cfg.RenewTimeout)
	defer cancel()
	rec := MembersRecord{Holder: n.cfg.Name, Epoch: t.k.epoch(), Members: list, Written: time.Now().UTC()}
	if err := n.d.Lease.WriteMembers(wctx, rec); err != nil {
		n.log.Warn("failsafe: the members record was not written", "err", err)
		return
	}
	ms.removal = ms.removal || slices.ContainsFunc(ms.committed, func(m Member) bool { return !rec.Lists(m.Name) })
	ms.committed, ms.ackedAt = list, time.Now()
	if !ms.removal {
		n.setAsk(t, list)
	}
	n.log.Info("failsafe members written", "members", memberNames(list))
}

func memberNames(list []Member) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.Name
	}
	return out
}

func (n *Node) failsafeURL() string {
	if n.d.Failsafe == nil {
		return ""
	}
	return n.d.Failsafe.URL
}

// askHolds sends a hold to every member every FAILSAFE_EVERY while the term lasts (always,
// not only once renewals fail: the promises must be fresh when NATS fails), and counts the
// promises in the term's coverage.
func (n *Node) askHolds(ctx context.Context, t *term) {
	fs := n.d.Failsafe
	client := &http.Client{Timeout: fs.Config.Timeout}
	tick := time.NewTicker(fs.Config.Every)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var targets []Member
		if p := t.members.ask.Load(); p != nil {
			targets = *p
		}
		h := failsafe.Hold{Cluster: n.cfg.Cluster, Holder: n.cfg.Name, Epoch: t.k.epoch(), Seq: t.holdSeq.Add(1), Hold: fs.Config.Hold}
		body, err := failsafe.SealHold(fs.Signer, h)
		if err != nil {
			n.log.Error("failsafe: cannot seal a hold", "err", err)
			return
		}
		for _, m := range targets {
			if m.URL == "" {
				continue // it never promises: the coverage stays incomplete
			}
			t.cov.Sent(m.Name, h.Seq, time.Now())
			wg.Go(func() {
				if err := n.ask(ctx, client, t.cov, m, h, body); err != nil && ctx.Err() == nil {
					n.log.Debug("failsafe: no promise", "member", m.Name, "err", err)
				}
			})
		}
	}
}

// ask sends one hold to m and counts its promise.
func (n *Node) ask(ctx context.Context, client *http.Client, cov *failsafe.Coverage, m Member, h failsafe.Hold, body []byte) error {
	b, err := post(ctx, client, m.URL, body, http.StatusOK)
	if err != nil {
		return err
	}
	p, err := failsafe.OpenPromise(n.d.Failsafe.Verifier, b)
	if err != nil {
		return err
	}
	if p.Member != m.Name || p.Holder != h.Holder || p.Epoch != h.Epoch || p.Cluster != h.Cluster {
		return errors.New("the promise does not answer this hold")
	}
	return cov.Answered(p)
}

// post sends body to a member's failsafe endpoint url and returns the answer's body (at most
// maxFailsafeMessage bytes), an error unless its status is want.
func post(ctx context.Context, client *http.Client, url string, body []byte, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFailsafeMessage))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// failsafeWhileStarting runs, from the lease's take until t.stopStarting is called (before
// serve starts its own, or before abandon fences), what arms failsafe and keeps it covered:
// the members record (updateMembers, every RENEW_EVERY) and the holds (askHolds). Without
// failsafe it does nothing.
//
// Why: a promotion or a boot holds the lease for the whole preparation and mfsmaster's load
// (tens of seconds at 10M inodes), and a NATS election (4-9 s) during it made the keeper mark
// the lease lost and the term abandon its start (startHeld): a failover lost to one NATS node.
// Safety is the serving master's argument (DESIGN.md, "Failsafe"), unchanged: the keeper
// counts on promises only once armed (this term's members record committed and a renewal
// after it), it fences when the coverage no longer outlasts MASTER_STOP_TIMEOUT, and the fence
// of a term that is starting (its mfsmaster killed, the VIP dropped: abandon) is no slower
// than a serving one's. It is stopped before abandon fences, so that a term that gave up
// never writes a members record after its release, over a newer holder's.
func (n *Node) failsafeWhileStarting(ctx context.Context, t *term) {
	if t.cov == nil {
		t.stopStarting = func() {}
		return
	}
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { n.askHolds(fctx, t) })
	wg.Go(func() {
		tick := time.NewTicker(n.cfg.RenewEvery)
		defer tick.Stop()
		for {
			n.updateMembers(fctx, t)
			select {
			case <-fctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.stopStarting = sync.OnceFunc(func() { cancel(); wg.Wait() })
}
