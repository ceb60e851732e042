package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// broadcastMAC is the Ethernet broadcast address.
var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// AddVIP configures the VIP on the host's eth0 (as a secondary address, so the host keeps
// using its own address for connections it opens). It is idempotent. It sends no ARP: call
// AnnounceVIP to update the other hosts' ARP caches as a real VIP manager would.
func (l *Lab) AddVIP(host string) error {
	vip := netip.PrefixFrom(l.cfg.VIP, l.cfg.Subnet.Bits())
	err := l.withHostLink(host, func(nh *netlink.Handle, link netlink.Link) error {
		if err := nh.AddrAdd(link, addrOf(vip)); err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lab %s: add VIP %s on %s: %w", l.cfg.Name, vip, host, err)
	}
	return nil
}

// DelVIP removes the VIP from the host; it is idempotent.
func (l *Lab) DelVIP(host string) error {
	vip := netip.PrefixFrom(l.cfg.VIP, l.cfg.Subnet.Bits())
	err := l.withHostLink(host, func(nh *netlink.Handle, link netlink.Link) error {
		if err := nh.AddrDel(link, addrOf(vip)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lab %s: delete VIP %s on %s: %w", l.cfg.Name, vip, host, err)
	}
	return nil
}

// VIPOwners returns, in configuration order, the hosts whose eth0 has the VIP configured
// (whether or not their link is up). More than one means split brain.
func (l *Lab) VIPOwners() ([]string, error) {
	var owners []string
	for _, h := range l.cfg.Hosts {
		has := false
		err := l.withHostLink(h.Name, func(nh *netlink.Handle, link netlink.Link) error {
			addrs, err := nh.AddrList(link, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			has = slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
				p, ok := prefixOf(a)
				return ok && p.Addr() == l.cfg.VIP
			})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("lab %s: VIP owners: %w", l.cfg.Name, err)
		}
		if has {
			owners = append(owners, h.Name)
		}
	}
	return owners, nil
}

// VIPOwner returns the host that has the VIP configured, "" if none, and an error wrapping
// ErrVIPConflict if more than one has.
func (l *Lab) VIPOwner() (string, error) {
	owners, err := l.VIPOwners()
	switch {
	case err != nil:
		return "", err
	case len(owners) > 1:
		return "", fmt.Errorf("lab %s: VIP %s on %v: %w", l.cfg.Name, l.cfg.VIP, owners, ErrVIPConflict)
	case len(owners) == 1:
		return owners[0], nil
	}
	return "", nil
}

// AnnounceVIP sends, from the host, one gratuitous ARP request and one gratuitous ARP reply
// for the VIP with the host's MAC, so the other hosts' ARP caches point to it.
func (l *Lab) AnnounceVIP(host string) error {
	c, mac, err := l.arpClient(host)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		p, err := arp.NewPacket(op, mac, l.cfg.VIP, broadcastMAC, l.cfg.VIP)
		if err == nil {
			err = c.WriteTo(p, broadcastMAC)
		}
		if err != nil {
			return fmt.Errorf("lab %s: announce VIP from %s: %w", l.cfg.Name, host, err)
		}
	}
	return nil
}

// VIPAnswerers sends an ARP request for the VIP from host from and returns, in configuration
// order, the hosts whose MAC answered within a short window (500ms, or less if ctx ends first).
// An answer from a MAC that no host has is reported as "mac:XX:XX:...". from should not hold
// the VIP itself: its own kernel does not answer it.
func (l *Lab) VIPAnswerers(ctx context.Context, from string) ([]string, error) {
	c, _, err := l.arpClient(from)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(500 * time.Millisecond)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("lab %s: ARP from %s: %w", l.cfg.Name, from, err)
	}
	if err := c.Request(l.cfg.VIP); err != nil {
		return nil, fmt.Errorf("lab %s: ARP request from %s: %w", l.cfg.Name, from, err)
	}
	seen := map[string]bool{}
	for {
		p, _, err := c.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lab %s: ARP read on %s: %w", l.cfg.Name, from, err)
		}
		if p.Operation == arp.OperationReply && p.SenderIP == l.cfg.VIP {
			seen[p.SenderHardwareAddr.String()] = true
		}
	}
	var hosts []string
	for _, h := range l.cfg.Hosts {
		mac, err := l.HostMAC(h.Name)
		if err != nil {
			return nil, err
		}
		if seen[mac.String()] {
			hosts = append(hosts, h.Name)
			delete(seen, mac.String())
		}
	}
	for mac := range seen {
		hosts = append(hosts, "mac:"+mac)
	}
	return hosts, nil
}

// arpClient opens an ARP socket on the host's eth0, inside its namespace.
func (l *Lab) arpClient(host string) (*arp.Client, net.HardwareAddr, error) {
	if _, err := l.host(host); err != nil {
		return nil, nil, err
	}
	var c *arp.Client
	var mac net.HardwareAddr
	err := inNetns(l.NetnsPath(host), func() error {
		ifi, err := net.InterfaceByName(hostIf)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("lab %s: ARP socket on %s: %w", l.cfg.Name, host, err)
	}
	return c, mac, nil
}
