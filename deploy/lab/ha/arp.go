package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mfsha/mfsha/deploy/lab"
)

// Gratuitous is one gratuitous ARP for the VIP (sender IP = target IP = the VIP) as a host
// received it, stamped by its kernel on arrival (not when a loaded test read it).
type Gratuitous struct {
	At        time.Time
	Operation arp.Operation
	SenderMAC net.HardwareAddr
}

// ARPCapture records the gratuitous ARPs for the VIP that arrive at a host's interface.
type ARPCapture struct {
	fd   int
	vip  netip.Addr
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	got  []Gratuitous
	rerr error
}

// CaptureARP starts capturing on host's interface (a raw packet socket opened in the host's
// network namespace, with kernel receive timestamps).
func CaptureARP(l *lab.Lab, host string) (*ARPCapture, error) {
	if !l.Has(host) {
		return nil, fmt.Errorf("lab %s: ARP capture on %s: %w", l.Name(), host, lab.ErrUnknownHost)
	}
	fd := -1
	err := inNetns(l.NetnsPath(host), func() error {
		ifi, err := net.InterfaceByName(lab.HostInterface)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ARP))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind to %s: %w", ifi.Name, err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("lab %s: ARP capture on %s: %w", l.Name(), host, err)
	}
	c := &ARPCapture{fd: fd, vip: l.VIP(), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *ARPCapture) run() {
	defer close(c.done)
	buf, oob := make([]byte, 2048), make([]byte, 256)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.rerr = fmt.Errorf("read ARP: %w", err)
			c.mu.Unlock()
			return
		}
		at := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					// struct timespec on a 64-bit Linux: two native int64s.
					at = time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
				}
			}
		}
		const ethHeader = 14
		if n <= ethHeader {
			continue
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(buf[ethHeader:n]); err != nil {
			continue
		}
		if p.SenderIP != c.vip || p.TargetIP != c.vip {
			continue
		}
		c.mu.Lock()
		c.got = append(c.got, Gratuitous{At: at, Operation: p.Operation, SenderMAC: append(net.HardwareAddr(nil), p.SenderHardwareAddr...)})
		c.mu.Unlock()
	}
}

// Stop ends the capture and returns the gratuitous ARPs received, in order of arrival.
func (c *ARPCapture) Stop() ([]Gratuitous, error) {
	close(c.stop)
	<-c.done
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got, c.rerr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// inNetns runs fn on an OS thread inside the network namespace at path (sockets it opens stay
// there); the thread is discarded if it cannot go back to the original namespace.
func inNetns(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the locked thread goes with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
