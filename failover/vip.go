package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// broadcastMAC is the Ethernet broadcast address, where gratuitous ARPs go.
var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// VIP is the cluster's virtual IP on one interface of this host.
//
// Every method acts on the network namespace of the calling OS thread (for the agent: the
// host's own stack). A VIP is immutable and safe for concurrent use; the kernel serialises the
// address changes themselves.
type VIP struct {
	addr  netip.Prefix // the VIP with the prefix length of the interface's subnet
	iface string
}

// NewVIP checks that addr is an IPv4 address with a prefix length (e.g. 10.0.0.100/24) and that
// the interface exists and can carry it (an Ethernet interface, not loopback, so gratuitous ARP
// reaches the neighbours). Errors name the setting: "VIP = ...: ..." or "INTERFACE = eth0: ...".
func NewVIP(addr netip.Prefix, iface string) (*VIP, error) {
	a := addr.Addr()
	switch {
	case !addr.IsValid() || !a.Is4():
		return nil, fmt.Errorf("VIP = %q: want an IPv4 address with its prefix length, e.g. 10.0.0.100/24", addr)
	case !a.IsGlobalUnicast():
		return nil, fmt.Errorf("VIP = %s: not a unicast address", addr)
	case addr.Bits() < 32 && a == addr.Masked().Addr():
		return nil, fmt.Errorf("VIP = %s: the subnet's network address, not a host's", addr)
	}
	link, err := netlink.LinkByName(iface)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil, fmt.Errorf("INTERFACE = %s: no such interface", iface)
	}
	if err != nil {
		return nil, fmt.Errorf("INTERFACE = %s: %w", iface, err)
	}
	switch attrs := link.Attrs(); {
	case attrs.Flags&net.FlagLoopback != 0:
		return nil, fmt.Errorf("INTERFACE = %s: a loopback interface", iface)
	case len(attrs.HardwareAddr) != 6:
		return nil, fmt.Errorf("INTERFACE = %s: no Ethernet address (%s link), cannot send ARP", iface, link.Type())
	}
	return &VIP{addr: addr, iface: iface}, nil
}

// Addr is the VIP's address.
func (v *VIP) Addr() netip.Addr { return v.addr.Addr() }

// String returns e.g. "10.0.0.100/24 on eth0".
func (v *VIP) String() string { return v.addr.String() + " on " + v.iface }

// Add configures the VIP on the interface. It is idempotent (an address already there is
// success) and sends no ARP: call Announce afterwards. It does not set the interface up.
func (v *VIP) Add() error {
	link, err := v.link()
	if err == nil {
		err = netlink.AddrAdd(link, netlinkAddr(v.addr))
	}
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add VIP %s: %w", v, err)
	}
	return nil
}

// Remove removes the VIP from the interface, whatever prefix length it was configured with
// (so that Held is false afterwards). It is idempotent: an address already gone is success.
func (v *VIP) Remove() error {
	link, err := v.link()
	if err != nil {
		return fmt.Errorf("remove VIP %s: %w", v, err)
	}
	addrs, err := v.held(link)
	if err != nil {
		return fmt.Errorf("remove VIP %s: %w", v, err)
	}
	for _, a := range addrs {
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("remove VIP %s: %w", v, err)
		}
	}
	return nil
}

// Held reports whether the interface has the VIP's address now, with any prefix length.
func (v *VIP) Held() (bool, error) {
	link, err := v.link()
	if err != nil {
		return false, fmt.Errorf("VIP %s: %w", v, err)
	}
	addrs, err := v.held(link)
	if err != nil {
		return false, fmt.Errorf("VIP %s: %w", v, err)
	}
	return len(addrs) > 0, nil
}

// Announce sends gratuitous ARP for the VIP with the interface's MAC to the Ethernet broadcast
// address so that the neighbours' ARP caches point to this host. At each offset of schedule
// (from the call, in increasing order) it sends burst (at least 1) packets of both forms, an
// ARP request and an ARP reply, each with sender IP = target IP = the VIP: some hosts heed only
// one form, and a single packet is often missed.
//
// Before each step it checks that the VIP is still held and stops if not: an address given up
// is never announced. It also stops when ctx ends. A failed send does not stop the schedule
// (later steps may still get through). It returns the first error (send, or reading the
// interface's addresses), wrapped with the interface name, or nil; an ended ctx or a VIP no
// longer held is not an error. It blocks until then (run it in a goroutine) and uses one ARP
// socket, opened at the first step and closed before it returns.
func (v *VIP) Announce(ctx context.Context, schedule []time.Duration, burst int) error {
	start := time.Now()
	var c *arp.Client // opened at the first step that finds the VIP held
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var packets []*arp.Packet
	var first error
	for _, at := range schedule {
		if !sleepUntil(ctx, start.Add(at)) {
			break
		}
		held, err := v.Held()
		if err != nil || !held {
			if first == nil {
				first = err
			}
			break
		}
		if c == nil {
			if c, packets, err = v.arpClient(); err != nil {
				return err
			}
		}
		for range max(burst, 1) {
			for _, p := range packets {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if err := c.WriteTo(p, broadcastMAC); err != nil && first == nil {
					first = fmt.Errorf("announce VIP on %s: send ARP %s: %w", v.iface, p.Operation, err)
				}
			}
		}
	}
	return first
}

// arpClient opens an ARP socket on the interface and builds the two gratuitous packets, a
// request and a reply, from its MAC. arp.Dial needs an IPv4 address on the interface: the VIP.
func (v *VIP) arpClient() (*arp.Client, []*arp.Packet, error) {
	ifi, err := net.InterfaceByName(v.iface)
	if err != nil {
		return nil, nil, fmt.Errorf("announce VIP on %s: %w", v.iface, err)
	}
	var packets []*arp.Packet
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		p, err := arp.NewPacket(op, ifi.HardwareAddr, v.addr.Addr(), broadcastMAC, v.addr.Addr())
		if err != nil {
			return nil, nil, fmt.Errorf("announce VIP on %s: %w", v.iface, err)
		}
		packets = append(packets, p)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, nil, fmt.Errorf("announce VIP on %s: ARP socket: %w", v.iface, err)
	}
	return c, packets, nil
}

// sleepUntil waits until t and reports whether ctx is still live then.
func sleepUntil(ctx context.Context, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	return ctx.Err() == nil
}

// link looks the interface up again at each call, since it may have been recreated.
func (v *VIP) link() (netlink.Link, error) {
	link, err := netlink.LinkByName(v.iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", v.iface, err)
	}
	return link, nil
}

// held returns the addresses of link whose IP is the VIP's (compared as netip.Addr).
func (v *VIP) held(link netlink.Link) ([]netlink.Addr, error) {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", v.iface, err)
	}
	var mine []netlink.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.addr.Addr() {
			mine = append(mine, a)
		}
	}
	return mine, nil
}

// netlinkAddr converts an IPv4 prefix to netlink's form.
func netlinkAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}
