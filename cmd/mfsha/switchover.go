package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
)

// switchoverCommand is `mfsha switchover`.
type switchoverCommand struct {
	nats    natsSettings
	logs    logSettings
	to      string
	timeout time.Duration
}

const switchoverUsage = `Usage: mfsha switchover --to NODE [--nats URL] [--cluster NAME] [--timeout 2m]

A planned handover with nothing lost: the master's node stops mfsmaster cleanly, ships its last
lines, removes the VIP and hands the lease to NODE, a standby, which folds those lines,
takes the VIP and starts mfsmaster. Returns once NODE serves, or fails naming the step.`

func (c *switchoverCommand) Run(ctx context.Context, args []string) error {
	s := config.New("switchover", switchoverUsage)
	c.nats.bind(s)
	c.logs.bind(s)
	s.String(&c.to, "to", "TO", "", "the standby `node` to hand the master role to")
	s.Duration(&c.timeout, "timeout", "TIMEOUT", 2*time.Minute, "give up after this `long`")
	log, err := setup(s, args, &c.logs, &c.nats)
	if err != nil {
		return err
	}
	if c.to == "" {
		return usageError{errors.New("--to: not set")}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := connect(ctx, c.nats, nil, "", "mfsha switchover", 30*time.Second, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	lease, err := failover.OpenLeaseReadOnly(ctx, conn.js, c.nats.cluster)
	if err != nil {
		return fmt.Errorf("no failover nodes run for cluster %s: %w", c.nats.cluster, err)
	}
	rec, rev, err := lease.Read(ctx)
	if err != nil {
		return err
	}
	switch {
	case rev == 0 || rec.State == failover.StateReleased:
		return errors.New("no master holds the lease now: nothing to switch over (a standby takes it by itself)")
	case rec.Holder == c.to:
		fmt.Printf("%s is already the master (epoch %d)\n", c.to, rec.Epoch)
		return nil
	case rec.State != failover.StateMaster:
		return fmt.Errorf("the lease holder %s is %s, not serving yet: try again shortly", rec.Holder, rec.State)
	}
	nodes, err := lease.Nodes(ctx)
	if err != nil {
		return err
	}
	var target *failover.NodeStatus
	var masterVersion uint64
	for i, n := range nodes {
		if n.Name == c.to {
			target = &nodes[i]
		}
		if n.Name == rec.Holder {
			masterVersion = n.Version
		}
	}
	switch {
	case target == nil:
		return fmt.Errorf("node %s is not running (known: %v)", c.to, names(nodes))
	case target.Role != string(failover.RoleStandby):
		return fmt.Errorf("node %s is %s, not a standby", c.to, target.Role)
	case target.Materialized == 0:
		return fmt.Errorf("node %s has materialized nothing yet", c.to)
	}
	start := time.Now()
	fmt.Printf("switchover: %s (epoch %d, version %d) -> %s (copy at %d)\n", rec.Holder, rec.Epoch, masterVersion, c.to, target.Version)
	if err := lease.RequestSwitchover(ctx, c.to, rec.Epoch); err != nil {
		return err
	}
	released := false
	for {
		r, rv, err := lease.Read(ctx)
		if err == nil {
			switch {
			case rv != 0 && r.State == failover.StateReleased && !released:
				released = true
				fmt.Printf("  %s stopped its master and shipped up to version %d; released to %s after %v\n", r.Holder, r.Final, r.To, time.Since(start).Round(time.Millisecond))
				if r.To != c.to {
					return fmt.Errorf("the old master released the lease to %q, not %s: %s", r.To, c.to, r.Reason)
				}
			case rv != 0 && r.Holder == c.to && r.State == failover.StateMaster:
				fmt.Printf("  %s serves, epoch %d, after %v\n", c.to, r.Epoch, time.Since(start).Round(time.Millisecond))
				return nil
			case rv != 0 && r.Holder != rec.Holder && r.Holder != c.to && r.State != failover.StateReleased:
				return fmt.Errorf("node %s took the lease instead of %s", r.Holder, c.to)
			}
		}
		select {
		case <-ctx.Done():
			_ = lease.ClearSwitchover(context.Background())
			return fmt.Errorf("switchover to %s not done after %v: %w", c.to, c.timeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func names(nodes []failover.NodeStatus) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}
