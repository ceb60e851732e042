package natsconn

import (
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func TestParseUsers(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	u, err := ParseUsers([]byte("# users\nCLUSTER = prod\nnode = "+pub+"  # the nodes\n"), "users.cfg")
	if err != nil || u.Cluster != "prod" || u.Keys[RoleNode] != pub || len(u.Keys) != 1 {
		t.Fatalf("got %+v, %v", u, err)
	}
	back, err := ParseUsers(u.Format(), "again")
	if err != nil || back.Keys[RoleNode] != pub || back.Cluster != "prod" {
		t.Fatalf("Format does not round-trip: %+v, %v", back, err)
	}
	seed, _ := kp.Seed()
	for _, tc := range []struct{ text, want string }{
		{"CLUSTER = prod\nNODE " + pub + "\n", "users.cfg line 2: want KEY = value"},
		{"CLUSTER = prod\nROOT = " + pub + "\n", "users.cfg line 2: unknown key ROOT"},
		{"CLUSTER = prod\nNODE = " + string(seed) + "\n", "users.cfg line 2: NODE: not an nkey user public key"},
		{"CLUSTER = prod\nNODE = " + pub + "\nNODE = " + pub + "\n", "users.cfg line 3: NODE already set on line 2"},
		{"CLUSTER = a.b\n", "users.cfg line 1: CLUSTER"},
		{"NODE = " + pub + "\n", "CLUSTER missing"},
		{"CLUSTER = prod\n", "no users"},
	} {
		_, err := ParseUsers([]byte(tc.text), "users.cfg")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.text, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), string(seed)) {
			t.Errorf("the error shows a seed: %v", err)
		}
	}
}
