package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// membersKey is the one key of the members bucket.
const membersKey = "members"

// Member is a failover node the holder asks for failsafe promises, and where: URL is its
// failsafe endpoint (empty when the node runs without FAILSAFE_LISTEN: it is listed, so that it
// may take an expired lease, but it never promises, so the holder cannot serve on promises).
type Member struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// MembersRecord is the value of the members key: every failover node the holder of Epoch saw,
// itself included. Only a node listed here may take an expired lease (see mayTakeExpired).
type MembersRecord struct {
	Holder  string    `json:"holder"`
	Epoch   uint64    `json:"epoch"`
	Members []Member  `json:"members"`
	Written time.Time `json:"written"`
}

// Lists reports whether name is a member.
func (r MembersRecord) Lists(name string) bool {
	return slices.ContainsFunc(r.Members, func(m Member) bool { return m.Name == name })
}

// sameMembers reports whether a and b list the same nodes at the same addresses.
func sameMembers(a, b []Member) bool { return slices.Equal(a, b) }

// WriteMembers replaces the members record.
func (l *Lease) WriteMembers(ctx context.Context, r MembersRecord) error {
	_, err := l.putMembersKey(ctx, membersKey, r, "the failsafe members")
	return err
}

// Members reads the members record from its stream's leader; found is false when no holder
// has written one (a cluster whose holders never ran with failsafe).
func (l *Lease) Members(ctx context.Context) (r MembersRecord, found bool, err error) {
	r, rev, err := l.MembersAt(ctx)
	return r, rev != 0, err
}

// MembersAt is Members with the record's revision; 0 when there is none (never written, or
// forgotten).
func (l *Lease) MembersAt(ctx context.Context) (r MembersRecord, rev uint64, err error) {
	rev, err = l.getMembersKey(ctx, membersKey, &r, "failsafe members")
	return r, rev, err
}

// ForgetMembers deletes the members record if it is still the one at revision rev (read with
// MembersAt). Then any node may take an expired lease, without waiting for promises: an
// admin's act, for when every node the record lists is gone for good (no listed node is left
// to take the lease, and none serves on promises). The next holder writes a new record.
func (l *Lease) ForgetMembers(ctx context.Context, rev uint64) error {
	return l.deleteMembersKey(ctx, membersKey, rev, "forget the failsafe members")
}

// The members bucket's keys (members, repairs) are JSON records written by failover nodes.

// putMembersKey replaces key's record with v; what names it in the error.
func (l *Lease) putMembersKey(ctx context.Context, key string, v any, what string) (uint64, error) {
	if l.members == nil {
		return 0, fmt.Errorf("write %s: the members bucket is not open", what)
	}
	b, _ := json.Marshal(v)
	rev, err := l.members.Put(ctx, key, b)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", what, err)
	}
	return rev, nil
}

// getMembersKey reads key's record into v from its stream's leader and returns its revision:
// 0 (v untouched) when there is none, or the bucket does not exist yet.
func (l *Lease) getMembersKey(ctx context.Context, key string, v any, what string) (uint64, error) {
	if l.members == nil {
		return 0, nil
	}
	b, rev, found, err := l.leaderGet(ctx, l.members, key)
	if err != nil || !found {
		return 0, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return 0, fmt.Errorf("%s record at revision %d: %w", what, rev, err)
	}
	return rev, nil
}

// deleteMembersKey deletes key's record if it is still the one at revision rev.
func (l *Lease) deleteMembersKey(ctx context.Context, key string, rev uint64, what string) error {
	if l.members == nil {
		return fmt.Errorf("%s: the members bucket is not open", what)
	}
	if err := l.members.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("%s record at revision %d: %w", what, rev, err)
	}
	return nil
}
