package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/stream"
)

// membersCommand is `mfsha members`.
type membersCommand struct {
	nats   natsSettings
	logs   logSettings
	forget string
}

const membersUsage = `Usage: mfsha members [--nats URL] [--cluster NAME] [--forget NODE,NODE...]

Prints the failsafe members record: the failover nodes the last lease holder listed, the only
ones that may take an expired lease (bucket MFSHA_<cluster>_members).

--forget deletes the record, for when every node it lists is gone for good: no listed node is
left to take the lease, so no node would. Name every node it lists (the record as you read
it): the command refuses another list, a record rewritten since, and a lease a node holds.
Any node may then take the expired lease; the next holder writes a new record. Needs the
node or admin credential.`

func (c *membersCommand) Run(ctx context.Context, args []string) error {
	s := config.New("members", membersUsage)
	c.nats.bind(s)
	c.logs.bind(s)
	s.FlagSet().StringVar(&c.forget, "forget", "", "delete the record, naming every `node` it lists, comma-separated")
	log, err := setup(s, args, &c.logs, &c.nats)
	if err != nil {
		return err
	}
	var gone []string
	if c.forget != "" {
		for _, n := range strings.Split(c.forget, ",") {
			if n = strings.TrimSpace(n); n != "" {
				gone = append(gone, n)
			}
		}
		if len(gone) == 0 {
			return usageError{errors.New("--forget: no node named")}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, c.nats, nil, "", "mfsha members", 30*time.Second, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	lease, err := failover.OpenLeaseReadOnly(ctx, conn.js, c.nats.cluster)
	if err != nil {
		return fmt.Errorf("no failover nodes ran for cluster %s: %w", c.nats.cluster, err)
	}
	r, rev, err := lease.MembersAt(ctx)
	if err != nil {
		return fmt.Errorf("members of cluster %s: %w", c.nats.cluster, err)
	}
	if gone == nil {
		printMembers(os.Stdout, c.nats.cluster, r, rev)
		return nil
	}
	if rev == 0 {
		fmt.Printf("no members record in bucket %s: nothing to forget\n", stream.MembersBucket(c.nats.cluster))
		return nil
	}
	if err := mayForget(ctx, lease, r, gone); err != nil {
		return err
	}
	if err := lease.ForgetMembers(ctx, rev); err != nil {
		return err
	}
	fmt.Printf("forgot the members record of %s (epoch %d) listing %s: any failover node may take the expired lease\n",
		r.Holder, r.Epoch, strings.Join(memberNames(r), ", "))
	return nil
}

// mayForget refuses to forget r unless gone names exactly the nodes it lists and no node holds
// the lease (a holder may be serving on its members' promises).
func mayForget(ctx context.Context, lease *failover.Lease, r failover.MembersRecord, gone []string) error {
	listed := memberNames(r)
	if !slices.Equal(slices.Sorted(slices.Values(gone)), slices.Sorted(slices.Values(listed))) {
		return fmt.Errorf("the members record lists %s, not %s: name every node it lists, each gone for good",
			strings.Join(listed, ","), strings.Join(gone, ","))
	}
	rec, rev, err := lease.Read(ctx)
	if err != nil {
		return fmt.Errorf("the lease: %w", err)
	}
	if rev != 0 && rec.State != failover.StateReleased {
		return fmt.Errorf("the lease is held by %s (%s, epoch %d): forget the members only when no node holds it and every node listed is gone for good",
			rec.Holder, rec.State, rec.Epoch)
	}
	return nil
}

func memberNames(r failover.MembersRecord) []string {
	var out []string
	for _, m := range r.Members {
		out = append(out, m.Name)
	}
	return out
}

func printMembers(w io.Writer, cluster string, r failover.MembersRecord, rev uint64) {
	if rev == 0 {
		fmt.Fprintf(w, "no members record in bucket %s: any failover node may take an expired lease\n", stream.MembersBucket(cluster))
		return
	}
	fmt.Fprintf(w, "members record (bucket %s, revision %d): written by %s at epoch %d, %s\n\n",
		stream.MembersBucket(cluster), rev, r.Holder, r.Epoch, r.Written.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tFAILSAFE URL")
	for _, m := range r.Members {
		fmt.Fprintf(tw, "%s\t%s\n", m.Name, cmp.Or(m.URL, "- (promises nothing)"))
	}
	tw.Flush()
}
