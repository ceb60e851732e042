package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// mfsmaster's data lock: who holds DATA_PATH's lock file, and waiting until nobody does.

// waitLockFree polls until owner(name) reports no foreign holder. With kill > 0 it SIGKILLs
// each holder it sees and gives up after kill; else it gives up when ctx ends.
func waitLockFree(ctx context.Context, owner func(string) (int, error), name string, kill time.Duration) error {
	if kill > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kill)
		defer cancel()
	}
	for {
		pid, err := owner(name)
		if err != nil || pid == 0 {
			return err
		}
		if kill > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still locked by pid %d: %w", name, pid, ctx.Err())
		case <-time.After(procPoll):
		}
	}
}

// a holder whose pid is not visible from here).
func lockOwner(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lock file: %w", err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, fmt.Errorf("lock file %s: F_GETLK: %w", path, err)
	}
	switch {
	case lk.Type == syscall.F_UNLCK:
		return 0, nil
	case lk.Pid <= 0:
		return -1, nil
	}
	return int(lk.Pid), nil
}

func pidString(pid int) string {
	if pid < 0 {
		return "a process not visible here"
	}
	return "pid " + strconv.Itoa(pid)
}
