package failover

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mfsha/mfsha/internal/tickle"
)

// Tickles: after a power-off or a partition the clients of the old master keep their TCP
// connections to the VIP and wait for their own resends (internal/tickle). So the master's
// node tells the other failover nodes, every tickleEvery, which connections its host has on
// the VIP; the node that next claims the VIP tickles them once its mfsmaster accepts, and the
// clients reconnect at once instead of up to seconds later.
//
// Who may believe what: a list is signed with the cluster's key and kept only when it is for
// this cluster and newer (epoch, then sequence) than the one kept. It is a hint, never a
// safety input: a tickle only makes a client that still talks to the VIP's old owner check
// its connection, and the new owner tickles only connections on its own VIP. The lists travel
// on the failsafe endpoint (FAILSAFE_LISTEN): without failsafe there are none, and clients
// find the new master as before.

// tickleEvery is how often the master's node sends its connection list.
const tickleEvery = time.Second

// tickleAgain are the offsets, from the first, of the promoted node's tickles: a client's
// TCP answers at most one out-of-window segment per 500 ms (net.ipv4.tcp_invalid_ratelimit),
// and a lost tickle or answer gets another chance.
var tickleAgain = []time.Duration{0, 600 * time.Millisecond, 1500 * time.Millisecond}

// maxTickleList bounds a list read from the network (tickle.MaxConns connections).
const maxTickleList = 8 << 20

// tickleURL is where a member with failsafe endpoint holdURL takes connection lists.
func tickleURL(holdURL string) string {
	return strings.TrimSuffix(holdURL, "/failsafe/hold") + "/failsafe/conns"
}

// handleConns is POST /failsafe/conns: the master's node's connection list, kept if newer.
func (n *Node) handleConns(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTickleList))
	if err != nil {
		http.Error(w, "connection list: "+err.Error(), http.StatusBadRequest)
		return
	}
	l, err := tickle.Open(n.d.Failsafe.Verifier, body)
	if err == nil && l.Cluster != n.cfg.Cluster {
		err = fmt.Errorf("a list for cluster %q, this node is in %q", l.Cluster, n.cfg.Cluster)
	}
	if err != nil {
		n.m.FailsafeRefused.Inc()
		n.log.Warn("tickle: a connection list was refused", "from", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	n.tickles.keep(l)
	w.WriteHeader(http.StatusNoContent)
}

// tickleList is the newest connection list a node received.
type tickleList struct {
	mu sync.Mutex
	l  tickle.List
}

func (k *tickleList) keep(l tickle.List) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.Epoch > k.l.Epoch || l.Epoch == k.l.Epoch && l.Seq > k.l.Seq {
		k.l = l
	}
}

func (k *tickleList) get() tickle.List {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.l
}

// sendConns sends the host's connections on the VIP to every member every tickleEvery while
// the term lasts.
func (n *Node) sendConns(ctx context.Context, t *term) {
	fs := n.d.Failsafe
	client := &http.Client{Timeout: fs.Config.Timeout}
	tick := time.NewTicker(tickleEvery)
	defer tick.Stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		conns, err := tickle.Established(n.d.VIP.Addr())
		if err != nil {
			n.log.Debug("tickle: connections not listed", "err", err)
			continue
		}
		if len(conns) > tickle.MaxConns {
			conns = conns[:tickle.MaxConns]
		}
		seq++
		body, err := tickle.Seal(fs.Signer, tickle.List{Cluster: n.cfg.Cluster, Holder: n.cfg.Name, Epoch: t.k.epoch(), Seq: seq, Conns: conns})
		if err != nil {
			n.log.Error("tickle: cannot seal the connection list", "err", err)
			return
		}
		var targets []Member
		if p := t.members.ask.Load(); p != nil {
			targets = *p
		}
		var wg sync.WaitGroup
		for _, m := range targets {
			if m.URL == "" || m.Name == n.cfg.Name {
				continue
			}
			wg.Go(func() {
				if _, err := post(ctx, client, tickleURL(m.URL), body, http.StatusNoContent); err != nil && ctx.Err() == nil {
					n.log.Debug("tickle: connection list not delivered", "member", m.Name, "err", err)
				}
			})
		}
		wg.Wait()
	}
}

// tickleClients tickles, in the background, the connections the last master's node listed on
// this node's VIP: call it once this node holds the VIP and its mfsmaster accepts.
func (n *Node) tickleClients(ctx context.Context, t *term) {
	l := n.tickles.get()
	vip := n.d.VIP.Addr()
	var conns []tickle.Conn
	for _, c := range l.Conns {
		if c.Local.Addr() == vip {
			conns = append(conns, c)
		}
	}
	if len(conns) == 0 {
		n.log.Info("tickle: no connections of the last master to reset", "list_from", l.Holder, "epoch", l.Epoch)
		return
	}
	t.arpWG.Go(func() {
		start := time.Now()
		for i, at := range tickleAgain {
			if !sleepUntil(ctx, start.Add(at)) {
				return
			}
			sent, err := tickle.Send(conns)
			n.m.Tickles.Add(float64(sent))
			if err != nil {
				n.log.Warn("tickle: some connections were not tickled", "sent", sent, "err", err)
			}
			if i == 0 {
				n.log.Info("tickle: reset the last master's client connections", "connections", len(conns), "list_from", l.Holder, "epoch", l.Epoch, "seq", l.Seq)
			}
		}
	})
}
