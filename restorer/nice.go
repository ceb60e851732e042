package restorer

import (
	"errors"
	"fmt"
	"os/exec"

	"golang.org/x/sys/unix"
)

// MaxFoldNiceLevel is the lowest CPU priority Linux has (nice 19).
const MaxFoldNiceLevel = 19

// DefaultFoldNiceLevel is the CPU nice level of a standby's background folds
// (FOLD_NICE_LEVEL).
//
// Why a standby folds at a lower priority than the node itself: a fold is throughput work
// (a delay costs only a few more lines to replay at a promotion, which FOLD_REPLAY watches),
// while the node beside it has deadlines that decide safety and liveness: a failsafe promise
// must reach the holder within FAILSAFE_TIMEOUT (300 ms) or the holder fences a healthy
// master, and a node that promotes must renew its lease every RENEW_EVERY. On a host with few
// cores a fold at the node's priority (one core, tens of seconds at 10M inodes) competed with
// those: the 10M bench on 2 CPUs saw a promotion lose its lease while the other node
// refolded. At nice 10 the kernel gives a runnable node about nine times the fold's share.
// A promotion's own fold is not niced: it is on the failover's critical path.
const DefaultFoldNiceLevel = 10

// startNiced starts cmd and sets its CPU nice level to nice (0: mfsha's own), at once: the
// child runs its first instructions (microseconds) at mfsha's level. (Setting the level on a
// locked thread before the fork would avoid even that, but a goroutine may run on the main
// thread, which the runtime never ends: mfsha itself would show nice 10 for ever.) A child
// that cannot be niced is killed, with the error.
func startNiced(cmd *exec.Cmd, nice int) error {
	if err := cmd.Start(); err != nil || nice == 0 {
		return err
	}
	err := unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, nice)
	if err == nil || errors.Is(err, unix.ESRCH) { // ESRCH: it has ended already
		return nil
	}
	cmd.Process.Kill()
	cmd.Wait()
	return fmt.Errorf("%s: nice level %d: %w", cmd.Path, nice, err)
}
