package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vipNet is the test's pair of namespaces, joined by a veth pair: a0 (10.250.77.1/24) in A,
// b0 (10.250.77.2/24) in B. Both namespaces are anonymous and private to the test: they
// (and the veth) vanish when their last handle or socket closes, even if the test dies.
type vipNet struct {
	a, b  netns.NsHandle
	a0MAC net.HardwareAddr
}

var testVIP = netip.MustParsePrefix("10.250.77.100/24")

func newVIPNet(t *testing.T) *vipNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: creates network namespaces and a veth pair")
	}
	n := &vipNet{a: newNetns(t), b: newNetns(t)}
	nh, err := netlink.NewHandleAt(n.a)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "a0"}, PeerName: "b0", PeerNamespace: netlink.NsFd(int(n.b))}
	if err := nh.LinkAdd(veth); err != nil {
		t.Fatalf("create veth a0/b0: %v", err)
	}
	// Deleting one end deletes both; closing the namespaces would do as well.
	t.Cleanup(func() {
		if nh, err := netlink.NewHandleAt(n.a); err == nil {
			if link, err := nh.LinkByName("a0"); err == nil {
				nh.LinkDel(link)
			}
			nh.Close()
		}
	})
	for _, end := range []struct {
		ns   netns.NsHandle
		name string
		addr string
	}{{n.a, "a0", "10.250.77.1/24"}, {n.b, "b0", "10.250.77.2/24"}} {
		nh, err := netlink.NewHandleAt(end.ns)
		if err != nil {
			t.Fatal(err)
		}
		defer nh.Close()
		link, err := nh.LinkByName(end.name)
		if err == nil {
			err = nh.AddrAdd(link, netlinkAddr(netip.MustParsePrefix(end.addr)))
		}
		if err == nil {
			err = nh.LinkSetUp(link)
		}
		if err != nil {
			t.Fatalf("set up %s: %v", end.name, err)
		}
		if end.name == "a0" {
			n.a0MAC = link.Attrs().HardwareAddr
		}
	}
	return n
}

// newNetns creates an anonymous network namespace, closed at cleanup.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	err := inNetns(netns.None(), func() error {
		var err error
		ns, err = netns.New()
		return err
	})
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNetns runs fn on an OS thread locked inside ns (or left in the current namespace if ns is
// netns.None()), then puts the thread back. A thread that cannot be put back stays locked and
// dies with its goroutine, so no other goroutine ever runs in a test namespace. Sockets opened
// by fn stay in ns.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				errc <- err
				return
			}
		}
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

// inA runs fn in namespace A and fails the test on error.
func (n *vipNet) inA(t *testing.T, what string, fn func() error) {
	t.Helper()
	if err := inNetns(n.a, fn); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// listen opens an ARP socket on b0 in namespace B, closed at cleanup.
func (n *vipNet) listen(t *testing.T) *arp.Client {
	t.Helper()
	var c *arp.Client
	err := inNetns(n.b, func() error {
		ifi, err := net.InterfaceByName("b0")
		if err == nil {
			c, err = arp.Dial(ifi)
		}
		return err
	})
	if err != nil {
		t.Fatalf("ARP socket on b0: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// gratuitous reads ARP packets on c until the deadline and counts, by operation, those that
// announce the VIP (sender IP = target IP = VIP) from a0's MAC; a packet announcing the VIP
// from another MAC fails the test. It stops early once it has want of each form, if want > 0.
func (n *vipNet) gratuitous(t *testing.T, c *arp.Client, deadline time.Time, want int) map[arp.Operation]int {
	t.Helper()
	got := map[arp.Operation]int{}
	if err := c.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	for want <= 0 || got[arp.OperationRequest] < want || got[arp.OperationReply] < want {
		p, _, err := c.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("read ARP on b0: %v", err)
		}
		if p.SenderIP != testVIP.Addr() {
			continue
		}
		if p.TargetIP != testVIP.Addr() || p.SenderHardwareAddr.String() != n.a0MAC.String() {
			t.Fatalf("ARP %s for the VIP: sender %s %s, target IP %s; want sender a0 %s, target the VIP",
				p.Operation, p.SenderIP, p.SenderHardwareAddr, p.TargetIP, n.a0MAC)
		}
		got[p.Operation]++
	}
	return got
}

func TestVIPAddRemoveHeld(t *testing.T) {
	n := newVIPNet(t)
	var v *VIP
	n.inA(t, "NewVIP", func() (err error) { v, err = NewVIP(testVIP, "a0"); return err })
	if got, want := v.String(), "10.250.77.100/24 on a0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	held := func() bool {
		var h bool
		n.inA(t, "Held", func() (err error) { h, err = v.Held(); return err })
		return h
	}
	for i := range 2 {
		n.inA(t, fmt.Sprintf("Add #%d", i+1), v.Add)
		if !held() {
			t.Fatalf("after Add #%d: Held = false, want true", i+1)
		}
	}
	// 10.250.77.10 is a prefix of 10.250.77.100 as text, not the same address.
	var near *VIP
	n.inA(t, "NewVIP .10", func() (err error) { near, err = NewVIP(netip.MustParsePrefix("10.250.77.10/24"), "a0"); return err })
	var nearHeld bool
	n.inA(t, "Held .10", func() (err error) { nearHeld, err = near.Held(); return err })
	if nearHeld {
		t.Error("10.250.77.10 Held = true with only .1 and .100 on a0")
	}
	for i := range 2 {
		n.inA(t, fmt.Sprintf("Remove #%d", i+1), v.Remove)
		if held() {
			t.Fatalf("after Remove #%d: Held = true, want false", i+1)
		}
	}
	// The address configured with another prefix length is still the VIP: Remove removes it.
	var v32 *VIP
	n.inA(t, "NewVIP /32", func() (err error) { v32, err = NewVIP(netip.PrefixFrom(testVIP.Addr(), 32), "a0"); return err })
	n.inA(t, "Add /32", v32.Add)
	if !held() {
		t.Fatal("after Add of the VIP as /32: Held = false, want true")
	}
	n.inA(t, "Remove", v.Remove)
	if held() {
		t.Fatal("after Remove of the /24 VIP: the /32 one is still there")
	}
}

func TestVIPNewErrors(t *testing.T) {
	n := newVIPNet(t)
	for _, tc := range []struct {
		addr  netip.Prefix
		iface string
		want  string
	}{
		{testVIP, "nope0", "INTERFACE = nope0: no such interface"},
		{testVIP, "lo", "INTERFACE = lo: "},
		{netip.Prefix{}, "a0", "VIP = "},
		{netip.MustParsePrefix("fd00::1/64"), "a0", "VIP = "},
		{netip.MustParsePrefix("10.250.77.0/24"), "a0", "VIP = 10.250.77.0/24: "},
	} {
		err := inNetns(n.a, func() error { _, err := NewVIP(tc.addr, tc.iface); return err })
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("NewVIP(%s, %s) = %v, want an error starting %q", tc.addr, tc.iface, err, tc.want)
		}
	}
}

func TestVIPAnnounce(t *testing.T) {
	n := newVIPNet(t)
	c := n.listen(t)
	var v *VIP
	n.inA(t, "NewVIP", func() (err error) { v, err = NewVIP(testVIP, "a0"); return err })
	n.inA(t, "Add", v.Add)

	// Held: every step sends burst packets of each form.
	schedule, burst := []time.Duration{0, 0, 50 * time.Millisecond}, 2
	n.inA(t, "Announce", func() error { return v.Announce(context.Background(), schedule, burst) })
	got := n.gratuitous(t, c, time.Now().Add(300*time.Millisecond), 0)
	want := len(schedule) * burst
	if got[arp.OperationRequest] != want || got[arp.OperationReply] != want {
		t.Fatalf("received %d requests and %d replies, want %d of each", got[arp.OperationRequest], got[arp.OperationReply], want)
	}

	// ctx ending stops the schedule without an error.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	n.inA(t, "Announce until ctx ends", func() error { return v.Announce(ctx, []time.Duration{0, time.Hour}, 1) })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Announce returned %v after ctx ended", d)
	}
	if got := n.gratuitous(t, c, time.Now().Add(200*time.Millisecond), 0); got[arp.OperationRequest] != 1 || got[arp.OperationReply] != 1 {
		t.Fatalf("with ctx ending after the first step: received %v, want one of each", got)
	}

	// Removed during the schedule: the steps after the removal send nothing.
	done := make(chan error, 1)
	go func() {
		done <- inNetns(n.a, func() error {
			return v.Announce(context.Background(), []time.Duration{0, 300 * time.Millisecond, 400 * time.Millisecond}, 1)
		})
	}()
	if got := n.gratuitous(t, c, time.Now().Add(5*time.Second), 1); got[arp.OperationRequest] != 1 || got[arp.OperationReply] != 1 {
		t.Fatalf("first step: received %v, want one of each", got)
	}
	n.inA(t, "Remove", v.Remove)
	if err := <-done; err != nil {
		t.Fatalf("Announce after Remove during the schedule = %v, want nil", err)
	}
	if got := n.gratuitous(t, c, time.Now().Add(200*time.Millisecond), 0); len(got) != 0 {
		t.Fatalf("after Remove: received %v, want nothing", got)
	}

	// Not held: nothing is sent, and that is not an error.
	n.inA(t, "Announce not held", func() error { return v.Announce(context.Background(), schedule, burst) })
	if got := n.gratuitous(t, c, time.Now().Add(200*time.Millisecond), 0); len(got) != 0 {
		t.Fatalf("VIP not held: received %v, want nothing", got)
	}
}
