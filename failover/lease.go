package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
)

// Keys of the lease bucket.
const (
	leaseKey      = "master"
	switchoverKey = "switchover"
	nodeKeyPrefix = "node."
)

// Lease states.
const (
	StatePromoting = "promoting" // the holder is preparing its master
	StateMaster    = "master"    // the holder's master serves
	StateReleased  = "released"  // nobody holds it; To, when set, is the only node that may take it
)

// LeaseRecord is the value of the lease key.
type LeaseRecord struct {
	Holder string    `json:"holder,omitempty"`
	Addr   string    `json:"addr,omitempty"`
	State  string    `json:"state"`
	Epoch  uint64    `json:"epoch,omitempty"` // revision of the write that took the lease: the fencing epoch
	Since  time.Time `json:"since"`
	// Released only: the last version the holder's shipper had acknowledged (its master was
	// stopped first), and the node it was handed to in a switchover.
	Final  uint64 `json:"final,omitempty"`
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// NodeStatus is what each node says about itself, refreshed every RenewEvery; it expires
// with the bucket's TTL when the node stops saying it.
type NodeStatus struct {
	Name         string    `json:"name"`
	Addr         string    `json:"addr,omitempty"`
	Role         string    `json:"role"`
	Epoch        uint64    `json:"epoch,omitempty"`
	Version      uint64    `json:"version"`                // master: its metadata version; standby: the next line it lacks
	Materialized uint64    `json:"materialized,omitempty"` // standby: version of its metadata.mfs
	Timeline     uint64    `json:"timeline,omitempty"`
	MooseFS      string    `json:"moosefs,omitempty"` // the release of the node's mfsmaster (MFSMASTER_BIN)
	Mfsha        string    `json:"mfsha,omitempty"`   // the node's mfsha version (buildinfo)
	Updated      time.Time `json:"updated"`
	// Failsafe is the node's failsafe endpoint (Failsafe.URL); empty without failsafe.
	Failsafe string `json:"failsafe,omitempty"`
	// Fold is what the standby's last fold cost (restorer.FoldCost); nil before its first.
	Fold *restorer.FoldCost `json:"fold,omitempty"`
}

// SwitchoverRequest asks the holder of epoch Epoch to hand the lease to To.
type SwitchoverRequest struct {
	To        string    `json:"to"`
	Epoch     uint64    `json:"epoch"`
	Requested time.Time `json:"requested"`
}

// Errors of the lease; match with errors.Is.
var (
	ErrLeaseHeld = errors.New("the lease is held by another node")
	ErrLeaseLost = errors.New("the lease was lost")
)

// Lease is the cluster's failover lease in a NATS KV bucket whose TTL is the lease's: a value
// not rewritten within the TTL disappears (a per-key TTL would be lost on update in nats.go).
// Taking it is a create (or a compare-and-swap on a released record); renewing it is a
// compare-and-swap on the revision; the revision that took it is the fencing epoch. Safe for
// concurrent use.
type Lease struct {
	kv      jetstream.KeyValue
	members jetstream.KeyValue // nil when read-only and no node has created it
	nc      *nats.Conn
	ttl     time.Duration
}

// OpenLease creates or updates the cluster's lease bucket with the given TTL and replicas.
func OpenLease(ctx context.Context, js jetstream.JetStream, cluster string, ttl time.Duration, replicas int) (*Lease, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      stream.LeaseBucket(cluster),
		Description: "mfsha failover lease of MooseFS cluster " + cluster,
		TTL:         ttl,
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", stream.LeaseBucket(cluster), err)
	}
	members, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      stream.MembersBucket(cluster),
		Description: "mfsha failsafe members of MooseFS cluster " + cluster + " (written by the lease's holder)",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("members bucket %s: %w", stream.MembersBucket(cluster), err)
	}
	return &Lease{kv: kv, members: members, nc: js.Conn(), ttl: ttl}, nil
}

// OpenLeaseReadOnly opens an existing lease bucket (for status and switchover); it returns an
// error wrapping jetstream.ErrBucketNotFound when no node has created it yet.
func OpenLeaseReadOnly(ctx context.Context, js jetstream.JetStream, cluster string) (*Lease, error) {
	kv, err := js.KeyValue(ctx, stream.LeaseBucket(cluster))
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", stream.LeaseBucket(cluster), err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", stream.LeaseBucket(cluster), err)
	}
	members, _ := js.KeyValue(ctx, stream.MembersBucket(cluster)) // absent before a node created it
	return &Lease{kv: kv, members: members, nc: js.Conn(), ttl: st.TTL()}, nil
}

// StreamName is the JetStream stream behind the bucket (its Raft group holds the lease).
func (l *Lease) StreamName() string { return "KV_" + l.kv.Bucket() }

// get reads the current value of key from the stream's leader. A bucket's Get may be answered
// by any replica (direct get), and a follower was seen seconds behind under load in the lab: a
// node must not decide on a stale lease, nor status on stale lags. found is false for a key
// that does not exist, expired, or was deleted.
func (l *Lease) get(ctx context.Context, key string) (value []byte, rev uint64, found bool, err error) {
	return l.leaderGet(ctx, l.kv, key)
}

// leaderGet is get from any of the lease's buckets.
func (l *Lease) leaderGet(ctx context.Context, kv jetstream.KeyValue, key string) (value []byte, rev uint64, found bool, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + kv.Bucket() + "." + key})
	// A stream without a leader (just created, or electing) drops the request: never wait
	// longer than a retry is worth.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	msg, err := l.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+kv.Bucket(), req)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	switch {
	case resp.Error != nil && jetstream.ErrorCode(resp.Error.Code) == jetstream.JSErrCodeMessageNotFound:
		return nil, 0, false, nil
	case resp.Error != nil:
		return nil, 0, false, fmt.Errorf("read %s: %s", key, resp.Error.Description)
	case resp.Message == nil:
		return nil, 0, false, fmt.Errorf("read %s: empty answer", key)
	}
	if len(resp.Message.Hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Hdrs)
		if err != nil {
			return nil, 0, false, fmt.Errorf("read %s: %w", key, err)
		}
		if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return nil, 0, false, nil
		}
	}
	return resp.Message.Data, resp.Message.Seq, true, nil
}

// Read returns the lease record and its revision, as the bucket's leader has them; rev 0 (and
// a zero record) when nobody holds it.
func (l *Lease) Read(ctx context.Context) (LeaseRecord, uint64, error) {
	b, rev, found, err := l.get(ctx, leaseKey)
	if err != nil || !found {
		return LeaseRecord{}, 0, err
	}
	var r LeaseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return LeaseRecord{}, 0, fmt.Errorf("lease record at revision %d: %w", rev, err)
	}
	return r, rev, nil
}

// Free reports whether node may take the lease as read: nobody holds it, or it was released
// to anyone or to node.
func Free(r LeaseRecord, rev uint64, node string) bool {
	return rev == 0 || (r.State == StateReleased && (r.To == "" || r.To == node))
}

// Acquire takes the lease for rec.Holder: by create when rev is 0, else by compare-and-swap on
// a released record of revision rev. It returns the new revision, the fencing epoch, written
// into the record. ErrLeaseHeld when another node was faster.
func (l *Lease) Acquire(ctx context.Context, rec LeaseRecord, rev uint64) (uint64, error) {
	b, _ := json.Marshal(rec)
	var err error
	if rev == 0 {
		rev, err = l.kv.Create(ctx, leaseKey, b)
	} else {
		rev, err = l.kv.Update(ctx, leaseKey, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("take the lease: %w", err)
	}
	rec.Epoch = rev
	return l.Renew(ctx, rec, rev)
}

// Retake creates the lease again with rec as it is, its Epoch included, and returns the new
// revision; ErrLeaseHeld when the key exists. Only for a holder whose record expired while
// NATS could not take its renewals and that nobody could take meanwhile (keeper.retake): the
// term goes on, so its fencing epoch does too.
func (l *Lease) Retake(ctx context.Context, rec LeaseRecord) (uint64, error) {
	b, _ := json.Marshal(rec)
	rev, err := l.kv.Create(ctx, leaseKey, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("take the lease again: %w", err)
	}
	return rev, nil
}

// Renew rewrites rec if the lease is still at revision rev, restarting its TTL, and returns
// the new revision. ErrLeaseLost when it is not (expired, or taken).
func (l *Lease) Renew(ctx context.Context, rec LeaseRecord, rev uint64) (uint64, error) {
	b, _ := json.Marshal(rec)
	next, err := l.kv.Update(ctx, leaseKey, b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("renew the lease at revision %d: %w", rev, ErrLeaseLost)
	}
	if err != nil {
		return 0, fmt.Errorf("renew the lease at revision %d: %w", rev, err)
	}
	return next, nil
}

// Release marks the lease released (rec.State is set), if it is still at revision rev.
func (l *Lease) Release(ctx context.Context, rec LeaseRecord, rev uint64) error {
	rec.State = StateReleased
	_, err := l.Renew(ctx, rec, rev)
	return err
}

// PutNode publishes a node's status.
func (l *Lease) PutNode(ctx context.Context, s NodeStatus) error {
	b, _ := json.Marshal(s)
	if _, err := l.kv.Put(ctx, nodeKeyPrefix+s.Name, b); err != nil {
		return fmt.Errorf("publish the status of node %s: %w", s.Name, err)
	}
	return nil
}

// Nodes returns the status of every node that said it within the TTL, by name.
func (l *Lease) Nodes(ctx context.Context) ([]NodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a dropped request must not hang a caller
	defer cancel()
	keys, err := l.kv.ListKeysFiltered(ctx, nodeKeyPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []NodeStatus
	for k := range keys.Keys() {
		b, _, found, err := l.get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", strings.TrimPrefix(k, nodeKeyPrefix), err)
		}
		if !found {
			continue // expired meanwhile
		}
		var s NodeStatus
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("node %s: %w", strings.TrimPrefix(k, nodeKeyPrefix), err)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RequestSwitchover asks the holder of epoch to hand the lease to node to.
func (l *Lease) RequestSwitchover(ctx context.Context, to string, epoch uint64) error {
	b, _ := json.Marshal(SwitchoverRequest{To: to, Epoch: epoch, Requested: time.Now().UTC()})
	if _, err := l.kv.Put(ctx, switchoverKey, b); err != nil {
		return fmt.Errorf("request a switchover: %w", err)
	}
	return nil
}

// Switchover returns the pending switchover request, if any (ok false when none).
func (l *Lease) Switchover(ctx context.Context) (SwitchoverRequest, bool, error) {
	b, _, found, err := l.get(ctx, switchoverKey)
	if err != nil || !found {
		return SwitchoverRequest{}, false, err
	}
	var r SwitchoverRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return SwitchoverRequest{}, false, fmt.Errorf("switchover request: %w", err)
	}
	return r, true, nil
}

// ClearSwitchover deletes the switchover request.
func (l *Lease) ClearSwitchover(ctx context.Context) error {
	if err := l.kv.Delete(ctx, switchoverKey); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("clear the switchover request: %w", err)
	}
	return nil
}
