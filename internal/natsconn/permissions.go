package natsconn

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/mfsha/mfsha/internal/stream"
)

// Grants are the subjects a NATS user may publish to and subscribe to. The server enforces
// them: a denied publish is dropped (and reported to the client as a permissions violation),
// so a JetStream API request the role may not make times out or fails, and nothing changes.
// Deny wins over allow.
type Grants struct {
	PubAllow, PubDeny, SubAllow []string
}

// InboxPrefix is the reply subject prefix of the client whose nkey public key is pub. Every
// user has its own, and may subscribe only to it: a stolen credential cannot read the replies
// meant for another role (a node's acks, its lease reads), nor forge them, since no role may
// publish to an inbox.
func InboxPrefix(pub string) string { return "_INBOX_" + pub }

// Unrestricted reports whether role has no limits at all (admin).
func Unrestricted(role Role) bool { return role == RoleAdmin }

// GrantsFor returns the permissions of role on the MooseFS cluster's stream and buckets, for
// the user with nkey public key pub. Admin is unrestricted (see Unrestricted) and gets nil.
//
// The lists are derived from the JetStream calls mfsha makes (internal/stream,
// internal/snapshot, shipper, restorer, failover, cmd/mfsha status); TestRoleGrants runs
// those calls as each role against a real server.
//
// Readers (standby, reader):
//   - stream and bucket info: $JS.API.STREAM.INFO (js.Stream, js.KeyValue, js.ObjectStore)
//   - message reads: $JS.API.DIRECT.GET (Stream.GetMsg on AllowDirect streams, KV Get) and
//     $JS.API.STREAM.MSG.GET (the lease read from the stream's leader, failover/lease.go)
//   - ordered consumers: CONSUMER.CREATE / MSG.NEXT / INFO / DELETE (snapshot chunks,
//     KV ListKeys of the node records) and their flow control replies $JS.FC.
//
// A node adds:
//   - publish the changelog (mfsha.CLUSTER.log.>), snapshot chunks and metadata ($O.BUCKET.>),
//     the lease, node records and switchover requests ($KV.BUCKET.>)
//   - STREAM.CREATE of its three streams (ensureStream, snapshot.Open, OpenLease), and
//     STREAM.UPDATE of the lease bucket only (OpenLease's CreateOrUpdateKeyValue)
//   - STREAM.PURGE of the changelog (retention) and of the snapshot bucket (a deleted
//     snapshot's chunks, orphans)
//   - STREAM.LEADER.STEPDOWN of the lease stream (failover.KeepLeaderOff)
//
// Nobody but admin may delete a stream or a message: STREAM.DELETE and STREAM.MSG.DELETE are
// denied to every other role, on every stream (a bucket is a stream: deleting one is a
// STREAM.DELETE).
func GrantsFor(role Role, cluster, pub string) *Grants {
	if Unrestricted(role) {
		return nil
	}
	changelog := stream.StreamName(cluster)
	snap := "OBJ_" + stream.SnapshotBucket(cluster)
	lease := "KV_" + stream.LeaseBucket(cluster)
	members := "KV_" + stream.MembersBucket(cluster)
	all := []string{changelog, snap, lease, members}

	g := &Grants{
		PubAllow: []string{"$JS.API.INFO"},
		PubDeny: []string{
			"$JS.API.STREAM.DELETE.>",
			"$JS.API.STREAM.MSG.DELETE.>",
			"$JS.API.ACCOUNT.PURGE.>",
			"$JS.API.STREAM.RESTORE.>",
			"$JS.API.CONSUMER.DURABLE.CREATE.>",
		},
		SubAllow: []string{InboxPrefix(pub) + ".>"},
	}
	for _, st := range all {
		g.PubAllow = append(g.PubAllow,
			"$JS.API.STREAM.INFO."+st,
			"$JS.API.STREAM.MSG.GET."+st,
			"$JS.API.DIRECT.GET."+st, "$JS.API.DIRECT.GET."+st+".>",
			"$JS.API.CONSUMER.CREATE."+st, "$JS.API.CONSUMER.CREATE."+st+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+st+".>",
			"$JS.API.CONSUMER.INFO."+st+".>",
			"$JS.API.CONSUMER.DELETE."+st+".>",
			"$JS.FC."+st+".>",
		)
	}
	if role != RoleNode {
		return g
	}
	g.PubAllow = append(g.PubAllow,
		stream.SubjectAll(cluster),
		"$O."+stream.SnapshotBucket(cluster)+".>",
		"$KV."+stream.LeaseBucket(cluster)+".>",
		"$KV."+stream.MembersBucket(cluster)+".>",
		"$JS.API.STREAM.PURGE."+changelog,
		"$JS.API.STREAM.PURGE."+snap,
		"$JS.API.STREAM.LEADER.STEPDOWN."+lease,
	)
	for _, st := range all {
		g.PubAllow = append(g.PubAllow, "$JS.API.STREAM.CREATE."+st)
	}
	// Only the lease and members buckets are updated (OpenLease's CreateOrUpdateKeyValue: TTL,
	// replicas). The changelog and snapshot streams are created, never updated: a node may not
	// shorten their limits (a MaxAge of a second would empty them).
	g.PubAllow = append(g.PubAllow, "$JS.API.STREAM.UPDATE."+lease, "$JS.API.STREAM.UPDATE."+members)
	return g
}

// serverPermissions turns g into the embedded server's form; nil stays nil (unrestricted).
func (g *Grants) serverPermissions() *server.Permissions {
	if g == nil {
		return nil
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: g.PubAllow, Deny: g.PubDeny},
		Subscribe: &server.SubjectPermission{Allow: g.SubAllow},
	}
}

// NkeyUsers are the server's users for u, each with its role's permissions.
func NkeyUsers(u Users) []*server.NkeyUser {
	var out []*server.NkeyUser
	for _, r := range Roles {
		pub, ok := u.Keys[r]
		if !ok {
			continue
		}
		out = append(out, &server.NkeyUser{Nkey: pub, Permissions: GrantsFor(r, u.Cluster, pub).serverPermissions()})
	}
	return out
}
