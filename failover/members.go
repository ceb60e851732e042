package failover

import (
	"context"
	"encoding/json"
	"errors"
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
	if l.members == nil {
		return errors.New("write the failsafe members: the members bucket is not open")
	}
	b, _ := json.Marshal(r)
	if _, err := l.members.Put(ctx, membersKey, b); err != nil {
		return fmt.Errorf("write the failsafe members: %w", err)
	}
	return nil
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
	if l.members == nil {
		return MembersRecord{}, 0, nil
	}
	b, rev, found, err := l.leaderGet(ctx, l.members, membersKey)
	if err != nil || !found {
		return MembersRecord{}, 0, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return MembersRecord{}, 0, fmt.Errorf("failsafe members record at revision %d: %w", rev, err)
	}
	return r, rev, nil
}

// ForgetMembers deletes the members record if it is still the one at revision rev (read with
// MembersAt). Then any node may take an expired lease, without waiting for promises: an
// admin's act, for when every node the record lists is gone for good (no listed node is left
// to take the lease, and none serves on promises). The next holder writes a new record.
func (l *Lease) ForgetMembers(ctx context.Context, rev uint64) error {
	if l.members == nil {
		return errors.New("forget the failsafe members: the members bucket is not open")
	}
	if err := l.members.Delete(ctx, membersKey, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("forget the failsafe members record at revision %d: %w", rev, err)
	}
	return nil
}
