package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
)

// nsfsMagic is statfs's f_type of a namespace file (NSFS_MAGIC).
const nsfsMagic = 0x6e736673

// isNetns reports whether path is a bound network namespace file.
func isNetns(path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == nsfsMagic
}

// ensureNetns makes path a named network namespace, like `ip netns add`; an existing one is
// kept, a stale file (no namespace bound to it any more) is replaced.
func ensureNetns(path string) error {
	if isNetns(path) {
		return nil
	}
	if err := deleteNetns(path); err != nil {
		return err
	}
	return onLockedThread(func() error {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return err
		}
		f.Close()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			os.Remove(path)
			return fmt.Errorf("unshare: %w", err)
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid())
		if err := syscall.Mount(src, path, "none", syscall.MS_BIND, ""); err != nil {
			os.Remove(path)
			return fmt.Errorf("bind %s: %w", src, err)
		}
		return nil
	})
}

// deleteNetns unbinds and removes a named namespace file; a missing one is not an error. The
// namespace itself disappears with its last process.
func deleteNetns(path string) error {
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// onLockedThread runs fn on a fresh goroutine locked to its OS thread and puts that thread back
// into the caller's network namespace afterwards. If that fails the thread is left locked and
// so is discarded by the runtime when the goroutine ends: no other goroutine ever runs in a
// foreign namespace.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// inNetns runs fn on an OS thread that is inside the namespace at path. Sockets that fn opens
// stay in that namespace after fn returns.
func inNetns(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer target.Close()
	return onLockedThread(func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("enter namespace %s: %w", path, err)
		}
		return fn()
	})
}

// Dial connects to address from inside the host's network namespace (as a process on that
// host would); the returned connection may be used from any goroutine. network is as for
// net.Dial ("tcp", "udp"...), address an IP and port.
func (l *Lab) Dial(ctx context.Context, host, network, address string) (net.Conn, error) {
	if _, err := l.host(host); err != nil {
		return nil, err
	}
	var conn net.Conn
	err := inNetns(l.NetnsPath(host), func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab %s: dial %s %s from %s: %w", l.cfg.Name, network, address, host, err)
	}
	return conn, nil
}

// Dialer returns a DialFunc that dials from inside the host's namespace.
func (l *Lab) Dialer(host string) DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		return l.Dial(ctx, host, network, address)
	}
}

// DialFunc dials a connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func isNoDevice(err error) bool {
	return errors.Is(err, syscall.ENODEV)
}

// InHost runs fn on an OS thread inside the host's network namespace, as a process on that
// host would run it: sockets fn opens (a listener, a raw socket, a netlink socket) belong to
// the host's network and stay so after fn returns.
func (l *Lab) InHost(host string, fn func() error) error {
	if _, err := l.host(host); err != nil {
		return err
	}
	return inNetns(l.NetnsPath(host), fn)
}
