package lab

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RestartNATS starts the NATS node on host again (after KillProcess or Stop) as StartNATS
// started it in the cluster made of hosts: the same state directory, so it recovers its
// streams from its store, and the same routes. It returns once the node accepts clients;
// WaitNATSCurrent tells when it has caught up.
func (l *Lab) RestartNATS(ctx context.Context, bin, host string, hosts ...string) error {
	if !slices.Contains(hosts, host) {
		return fmt.Errorf("lab %s: restart NATS on %s: not one of the cluster's hosts %v", l.cfg.Name, host, hosts)
	}
	sec, err := l.makeSecrets(hosts)
	if err != nil {
		return err
	}
	return l.Start(ctx, l.natsSpec(bin, sec, host, hosts))
}

// WaitNATSCurrent waits, connected from host from to urls, until every stream has a leader
// and every one of its replicas is online and current, and returns the last state seen
// otherwise. After a node's restart this is the cluster healthy again: the node holds its
// replicas and a second loss would leave each stream a quorum.
func (l *Lab) WaitNATSCurrent(ctx context.Context, from string, urls ...string) error {
	nc, err := l.ConnectNATS(from, urls...)
	if err != nil {
		return fmt.Errorf("lab %s: NATS current: %w", l.cfg.Name, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("lab %s: NATS current: %w", l.cfg.Name, err)
	}
	var last string
	err = poll(ctx, func() bool {
		last = natsNotCurrent(ctx, js)
		if last != "" {
			time.Sleep(100 * time.Millisecond)
		}
		return last == ""
	})
	if err != nil {
		return fmt.Errorf("lab %s: NATS streams not current (%s): %w", l.cfg.Name, last, err)
	}
	return nil
}

// natsNotCurrent says what is not current yet among the streams js sees ("" when all are).
func natsNotCurrent(ctx context.Context, js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list := js.ListStreams(ctx)
	n := 0
	for info := range list.Info() {
		n++
		name, cl := info.Config.Name, info.Cluster
		switch {
		case cl == nil:
			return "stream " + name + ": no cluster info"
		case cl.Leader == "":
			return "stream " + name + ": no leader"
		case len(cl.Replicas) != info.Config.Replicas-1:
			return fmt.Sprintf("stream %s: leader %s and %d other replicas, want %d in all", name, cl.Leader, len(cl.Replicas), info.Config.Replicas)
		}
		for _, p := range cl.Replicas {
			if !p.Current || p.Offline {
				return fmt.Sprintf("stream %s: replica %s current %v, offline %v, lag %d", name, p.Name, p.Current, p.Offline, p.Lag)
			}
		}
	}
	if err := list.Err(); err != nil {
		return "list streams: " + err.Error()
	}
	if n == 0 {
		return "no stream"
	}
	return ""
}
