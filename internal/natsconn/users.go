package natsconn

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/mfsha/mfsha/internal/stream"
)

// Role is what an NATS user of mfsha may do; see Permissions.
type Role string

// The roles `mfsha init` makes a user for.
const (
	RoleAdmin   Role = "admin"   // everything, deletes included: for operators only
	RoleNode    Role = "node"    // a failover node, or `mfsha ship`: writes the stream, snapshots, lease
	RoleStandby Role = "standby" // `mfsha standby` without --vip: reads
	RoleReader  Role = "reader"  // `mfsha restore` and `mfsha status`: reads
)

// Roles lists every role, in the order files show them.
var Roles = []Role{RoleAdmin, RoleNode, RoleStandby, RoleReader}

// Users is the content of a NATS_USERS file (nats-users.cfg, written by `mfsha init`): the
// MooseFS cluster the users may touch and each role's nkey public key, one `KEY = value` per
// line:
//
//	CLUSTER = prod
//	ADMIN = UAB...
//	NODE = UCD...
//	STANDBY = UEF...
//	READER = UGH...
type Users struct {
	Cluster string
	Keys    map[Role]string // role -> nkey public key (U...)
}

// LoadUsers reads a NATS_USERS file. Every error names the file and line.
func LoadUsers(path string) (Users, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Users{}, fmt.Errorf("NATS_USERS: %w", err)
	}
	return ParseUsers(b, path)
}

// ParseUsers parses the content of a NATS_USERS file named name.
func ParseUsers(b []byte, name string) (Users, error) {
	u := Users{Keys: map[Role]string{}}
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Users{}, fmt.Errorf("%s line %d: want KEY = value", name, n)
		}
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if prev, dup := seen[k]; dup {
			return Users{}, fmt.Errorf("%s line %d: %s already set on line %d", name, n, k, prev)
		}
		seen[k] = n
		if k == "CLUSTER" {
			if err := stream.ValidCluster(v); err != nil {
				return Users{}, fmt.Errorf("%s line %d: CLUSTER: %w", name, n, err)
			}
			u.Cluster = v
			continue
		}
		role := Role(strings.ToLower(k))
		if !validRole(role) {
			return Users{}, fmt.Errorf("%s line %d: unknown key %s (want CLUSTER, ADMIN, NODE, STANDBY or READER)", name, n, k)
		}
		if !nkeys.IsValidPublicUserKey(v) {
			return Users{}, fmt.Errorf("%s line %d: %s: not an nkey user public key (U...)", name, n, k)
		}
		u.Keys[role] = v
	}
	if err := sc.Err(); err != nil {
		return Users{}, fmt.Errorf("%s: %w", name, err)
	}
	if u.Cluster == "" {
		return Users{}, fmt.Errorf("%s: CLUSTER missing", name)
	}
	if len(u.Keys) == 0 {
		return Users{}, fmt.Errorf("%s: no users (ADMIN, NODE, STANDBY, READER)", name)
	}
	return u, nil
}

// Format renders u in the NATS_USERS file format.
func (u Users) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# mfsha NATS users (nkeys) of one MooseFS cluster, written by `mfsha init`.\n")
	b.WriteString("# Public keys only: this file is not secret. Used as NATS_USERS by `mfsha nats` and by\n")
	b.WriteString("# `mfsha ship` when it runs the embedded server. ROLE = nkey public key.\n")
	fmt.Fprintf(&b, "CLUSTER = %s\n", u.Cluster)
	for _, r := range Roles {
		if k, ok := u.Keys[r]; ok {
			fmt.Fprintf(&b, "%s = %s\n", strings.ToUpper(string(r)), k)
		}
	}
	return b.Bytes()
}

func validRole(r Role) bool {
	for _, x := range Roles {
		if x == r {
			return true
		}
	}
	return false
}
