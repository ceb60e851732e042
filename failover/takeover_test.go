package failover

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStartHeldStopsWhenTheLeaseGoes: a start under a lease that is lost (renewals failed
// while the node prepared big files, or while mfsmaster loaded) must end in an error wrapping
// ErrLeaseLost, with the real mfsmaster it spawned gone and never serving: the boot then
// tries again (takeLocal) instead of standing by and archiving the files, and no master runs
// past the lease's expiry. Found by the 10M-inode bench on MooseFS 4.59.2: the lease was lost
// 4 s into a 35 s boot, and the node kept the VIP and let mfsmaster serve 31 s later.
func TestStartHeldStopsWhenTheLeaseGoes(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, logs := newTestMaster(t, env, 30*time.Second)
	n := &Node{d: Deps{Master: m}, log: m.log, m: NewMetrics(nil)}
	k := &keeper{lost: make(chan struct{}), log: m.log}
	k.markLost(errors.New("test: renewals failed"))
	_, err := n.startHeld(context.Background(), k)
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("startHeld after the lease was lost: %v; want ErrLeaseLost", err)
	}
	if m.Running() {
		t.Fatal("mfsmaster still runs after a start whose lease was lost")
	}
	if strings.Contains(logs.String(), "mfsmaster serves") {
		t.Fatalf("mfsmaster served under a lost lease:\n%s", logs)
	}
	t.Logf("startHeld: %v", err)
}
