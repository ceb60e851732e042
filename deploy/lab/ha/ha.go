// Package ha runs mfsha failover nodes in a lab (see package lab): start them, watch the
// lease, sample who holds the VIP. Tests and benchmarks of the failover share it.
package ha

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/natsconn"
)

// RoleNode is the role of an mfsha failover node (`mfsha ship` or `mfsha standby` with --vip).
const RoleNode lab.Role = "mfsha"

// NodeSpec describes an mfsha failover node.
type NodeSpec struct {
	Host    string
	Bin     string   // the mfsha binary
	Start   string   // "ship" (starts as the master) or "standby"
	Cluster string   // MooseFS cluster name in NATS
	NATS    []string // NATS URLs
	// Extra flags, e.g. "--lease-ttl", "3s".
	Extra []string
	// Receive: while standing by, the node receives the changelog from the VIP's metalogger
	// port itself (--receive) instead of reading the host's mfsmetalogger files.
	Receive bool
}

// NodeMetricsAddr is where a node's Prometheus metrics are served.
func NodeMetricsAddr(l *lab.Lab, host string) string {
	return netip.AddrPortFrom(l.HostAddr(host), 9480).String()
}

// StartNode writes the host's mfsmaster.cfg and runs an mfsha failover node on it, with the
// lab's MooseFS release as its mfsmaster (--mfsmaster): the node owns mfsmaster (never start one with StartMaster on that host), the VIP (never AddVIP) and,
// while it stands by, a materialized metadata in HOST/standby merged with the local
// metalogger's files. It returns once the node accepted its settings (its metrics port is
// open); see WaitMaster for its role.
func StartNode(ctx context.Context, l *lab.Lab, spec NodeSpec) error {
	if !l.Has(spec.Host) {
		return fmt.Errorf("lab %s: %s: %w", l.Name(), spec.Host, lab.ErrUnknownHost)
	}
	haddr := l.HostAddr(spec.Host)
	if spec.Start != "ship" && spec.Start != "standby" {
		return fmt.Errorf("lab %s: node on %s: Start %q: want ship or standby", l.Name(), spec.Host, spec.Start)
	}
	cfg, err := l.MasterConfig(spec.Host)
	if err != nil {
		return err
	}
	dir := l.HostDir(spec.Host)
	vip := netip.PrefixFrom(l.VIP(), l.Subnet().Bits())
	argv := []string{spec.Bin, spec.Start,
		"--cluster", spec.Cluster, "--nats", strings.Join(spec.NATS, ","), "--replicas", "3",
		"--vip", vip.String(), "--interface", lab.HostInterface, "--name", spec.Host, "--node-addr", haddr.String(),
		"--mfsmaster-config", cfg, "--mfsmaster", l.MooseFS().Path("mfsmaster"), "--archive", filepath.Join(dir, "archive"),
		"--metrics", NodeMetricsAddr(l, spec.Host)}
	if spec.Receive {
		argv = append(argv, "--receive", netip.AddrPortFrom(l.VIP(), lab.PortMasterMeta).String())
	} else {
		argv = append(argv, "--metalogger", l.MetaloggerDataDir(spec.Host))
	}
	argv = append(argv, l.NATSFlags(natsconn.RoleNode)...)
	if spec.Start == "ship" {
		argv = append(argv, "--data", l.MasterDataDir(spec.Host), "--state", filepath.Join(dir, "mfsha"),
			"--standby-data", filepath.Join(dir, "standby"))
	} else {
		argv = append(argv, "--data", filepath.Join(dir, "standby"), "--state", filepath.Join(dir, "mfsha"))
	}
	keys, err := l.KeyFlags() // a failover node ships and stands by: it signs and verifies
	if err != nil {
		return err
	}
	argv = append(argv, keys...)
	argv = append(argv, spec.Extra...)
	ps := lab.ProcSpec{Host: spec.Host, Role: RoleNode, Argv: argv}
	metrics := NodeMetricsAddr(l, spec.Host)
	dial := l.Dialer(spec.Host)
	ps.Ready = func(ctx context.Context) error { // its settings were accepted
		c, err := dial(ctx, "tcp", metrics)
		if err == nil {
			c.Close()
		}
		return err
	}
	return l.Start(ctx, ps)
}

// Lease opens the cluster's failover lease from host (read-only use: status and checks),
// waiting for a node to create it. Call the returned function when done.
func Lease(ctx context.Context, l *lab.Lab, from, cluster string, urls []string) (*failover.Lease, func(), error) {
	nc, err := l.ConnectNATS(from, urls...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	var lease *failover.Lease
	err = poll(ctx, func() bool { // the first node creates the bucket
		// Each attempt bounded: a request to a stream still electing its leader is dropped.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		lease, err = failover.OpenLeaseReadOnly(actx, js, cluster)
		return err == nil
	})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("lease of cluster %s: %w", cluster, err)
	}
	return lease, nc.Close, nil
}

// WaitMaster waits until node holds the lease as a serving master, and returns its epoch.
func WaitMaster(ctx context.Context, lease *failover.Lease, node string) (uint64, error) {
	var last failover.LeaseRecord
	err := poll(ctx, func() bool {
		r, rev, err := lease.Read(ctx)
		last = r
		return err == nil && rev != 0 && r.Holder == node && r.State == failover.StateMaster
	})
	if err != nil {
		return 0, fmt.Errorf("%s never became the master (lease: %+v): %w", node, last, err)
	}
	return last.Epoch, nil
}

// WaitCaughtUp waits until the standby node has materialized metadata and its local copy holds
// every line up to the master's version (as each node reports in the lease bucket).
func WaitCaughtUp(ctx context.Context, lease *failover.Lease, standby string) error {
	var nodes []failover.NodeStatus
	err := poll(ctx, func() bool {
		var err error
		if nodes, err = lease.Nodes(ctx); err != nil {
			return false
		}
		var mv, sv, mat, mtl, stl uint64
		for _, n := range nodes {
			switch {
			case n.Role == string(failover.RoleMaster):
				mv, mtl = n.Version, n.Timeline
			case n.Name == standby:
				sv, mat, stl = n.Version, n.Materialized, n.Timeline
			}
		}
		// The same timeline too: after a point-in-time restore the versions start lower.
		return mv > 0 && mat > 0 && sv >= mv && mtl != 0 && stl == mtl
	})
	if err != nil {
		return fmt.Errorf("standby %s did not catch up (nodes: %+v): %w", standby, nodes, err)
	}
	return nil
}

// VIPSampler records which hosts hold the VIP, every Every, until stopped.
type VIPSampler struct {
	l    *lab.Lab
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	max     int
	samples int
	errs    int
	worst   []string
	changes []string // "t+1.234s: [mb]"
}

// SampleVIP starts a VIPSampler.
func SampleVIP(l *lab.Lab, every time.Duration) *VIPSampler {
	s := &VIPSampler{l: l, stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		prev := "?"
		for {
			owners, err := l.VIPOwners()
			s.mu.Lock()
			if err != nil {
				s.errs++
			} else {
				s.samples++
				if len(owners) > s.max {
					s.max, s.worst = len(owners), owners
				}
				if cur := fmt.Sprint(owners); cur != prev {
					s.changes = append(s.changes, fmt.Sprintf("t+%.3fs: %s", time.Since(start).Seconds(), cur))
					prev = cur
				}
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns an error if at any sample more than one host held the
// VIP; history lists the changes of owner.
func (s *VIPSampler) Stop() (history []string, samples int, err error) {
	close(s.stop)
	<-s.done
	err = s.Conflict()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 {
		err = errors.Join(err, errors.New("no VIP sample succeeded"))
	}
	return s.changes, s.samples, err
}

// Conflict returns, without stopping the sampling, an error if at any sample so far more than
// one host held the VIP.
func (s *VIPSampler) Conflict() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 1 {
		return fmt.Errorf("VIP held by %v at once: %w", s.worst, lab.ErrVIPConflict)
	}
	return nil
}

// NodeLog is the path of the node's log on host.
func NodeLog(l *lab.Lab, host string) string { return l.LogPath(host, RoleNode) }

// poll calls done until it returns true or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	for delay := 5 * time.Millisecond; !done(); delay = min(delay*2, 100*time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return nil
}
