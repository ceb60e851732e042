package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsDir is where iproute2 (and this package) keeps named network namespaces.
const netnsDir = "/run/netns"

// hostIf is the name of a host's veth end inside its namespace.
const hostIf = "eth0"

// BridgeName returns the name of the lab's bridge in the root namespace.
func (l *Lab) BridgeName() string { return l.cfg.Name + "-br" }

// VethName returns the name of the root-namespace end of the host's veth pair.
func (l *Lab) VethName(host string) string { return l.cfg.Name + "-" + host }

// NetnsPath returns the path of the host's named network namespace, /run/netns/NAME-HOST.
func (l *Lab) NetnsPath(host string) string {
	return filepath.Join(netnsDir, l.cfg.Name+"-"+host)
}

// hostMAC is the MAC address given to a host's eth0 when the lab creates it: locally
// administered, followed by the host's IPv4 address, so that a MAC read from an ARP answer
// names the host.
func hostMAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x00, b[0], b[1], b[2], b[3]}
}

func (l *Lab) upNetwork(ctx context.Context) error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("lab %s: %w", l.cfg.Name, err)
	}
	br, err := ensureBridge(l.BridgeName())
	if err != nil {
		return fmt.Errorf("lab %s: bridge %s: %w", l.cfg.Name, l.BridgeName(), err)
	}
	for _, h := range l.cfg.Hosts {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lab %s: up: %w", l.cfg.Name, err)
		}
		if err := l.upHost(h, br); err != nil {
			return fmt.Errorf("lab %s: host %s: %w", l.cfg.Name, h.Name, err)
		}
	}
	return nil
}

func ensureBridge(name string) (netlink.Link, error) {
	br, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		br, err = netlink.LinkByName(name)
	}
	if err != nil {
		return nil, err
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("exists as a %s, not a bridge", br.Type())
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	return br, nil
}

// upHost makes the host's namespace, veth pair and address exist and be up.
func (l *Lab) upHost(h HostSpec, br netlink.Link) error {
	path := l.NetnsPath(h.Name)
	if err := ensureNetns(path); err != nil {
		return fmt.Errorf("namespace %s: %w", path, err)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer nh.Close()

	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}

	name := l.VethName(h.Name)
	outer, inner, paired, err := findVeth(name, nh)
	if err != nil {
		return err
	}
	if !paired {
		if outer != nil {
			if err := netlink.LinkDel(outer); err != nil {
				return fmt.Errorf("delete unpaired veth %s: %w", name, err)
			}
		}
		if inner != nil {
			if err := nh.LinkDel(inner); err != nil {
				return fmt.Errorf("delete unpaired %s in %s: %w", hostIf, path, err)
			}
		}
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index},
			PeerName:         hostIf,
			PeerNamespace:    netlink.NsFd(int(ns)),
			PeerHardwareAddr: hostMAC(h.Addr),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s: %w", name, err)
		}
		if outer, inner, paired, err = findVeth(name, nh); err != nil {
			return err
		}
		if !paired {
			return fmt.Errorf("veth %s: created but not found as a pair", name)
		}
	}
	if outer.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(outer, br); err != nil {
			return fmt.Errorf("attach %s to %s: %w", name, br.Attrs().Name, err)
		}
	}
	if err := netlink.LinkSetUp(outer); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	if err := nh.LinkSetUp(inner); err != nil {
		return fmt.Errorf("set %s up in %s: %w", hostIf, path, err)
	}
	return ensureHostAddr(nh, inner, netip.PrefixFrom(h.Addr, l.cfg.Subnet.Bits()))
}

// findVeth returns the root end (by name) and the namespace end (eth0 in nh) of the host's
// veth pair, nil for an end that does not exist, and whether both exist and are peers.
func findVeth(name string, nh *netlink.Handle) (outer, inner netlink.Link, paired bool, err error) {
	outer, err = netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		outer, err = nil, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("look up %s: %w", name, err)
	}
	if outer != nil && outer.Type() != "veth" {
		return nil, nil, false, fmt.Errorf("link %s exists as a %s, not a veth", name, outer.Type())
	}
	inner, err = nh.LinkByName(hostIf)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		inner, err = nil, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("look up %s in namespace: %w", hostIf, err)
	}
	if outer == nil || inner == nil {
		return outer, inner, false, nil
	}
	// IFLA_LINK of a veth end is its peer's index (in the peer's namespace).
	if inner.Type() != "veth" {
		return outer, inner, false, nil
	}
	paired = outer.Attrs().ParentIndex == inner.Attrs().Index && inner.Attrs().ParentIndex == outer.Attrs().Index
	return outer, inner, paired, nil
}

// ensureHostAddr makes want the first (primary) IPv4 address of link. If it is missing while
// other addresses are there (such as the VIP), those are removed first so that want becomes
// primary and is used as the source of outgoing connections.
func ensureHostAddr(nh *netlink.Handle, link netlink.Link, want netip.Prefix) error {
	addrs, err := nh.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok && p == want {
			return nil
		}
	}
	for _, a := range addrs {
		if err := nh.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove %s: %w", a.IPNet, err)
		}
	}
	if err := nh.AddrAdd(link, addrOf(want)); err != nil {
		return fmt.Errorf("add %s: %w", want, err)
	}
	return nil
}

func addrOf(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// withHostLink opens a netlink handle inside the host's namespace and passes it, with the
// host's eth0, to fn.
func (l *Lab) withHostLink(host string, fn func(nh *netlink.Handle, link netlink.Link) error) error {
	if _, err := l.host(host); err != nil {
		return err
	}
	ns, err := netns.GetFromPath(l.NetnsPath(host))
	if err != nil {
		return fmt.Errorf("lab %s: host %s: open namespace: %w", l.cfg.Name, host, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("lab %s: host %s: netlink: %w", l.cfg.Name, host, err)
	}
	defer nh.Close()
	link, err := nh.LinkByName(hostIf)
	if err != nil {
		return fmt.Errorf("lab %s: host %s: %s: %w", l.cfg.Name, host, hostIf, err)
	}
	return fn(nh, link)
}

// HostMAC returns the hardware address of the host's eth0.
func (l *Lab) HostMAC(host string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := l.withHostLink(host, func(_ *netlink.Handle, link netlink.Link) error {
		mac = link.Attrs().HardwareAddr
		return nil
	})
	return mac, err
}

// CutLink sets the root end of the host's veth down: the host keeps its addresses and
// processes but can no longer exchange a packet with any other host, as if its cable were
// pulled. Nothing is sent to the peers (no FIN, no RST). RestoreLink or Up undoes it.
func (l *Lab) CutLink(host string) error {
	return l.setVeth(host, false)
}

// RestoreLink sets the root end of the host's veth up again.
func (l *Lab) RestoreLink(host string) error {
	return l.setVeth(host, true)
}

func (l *Lab) setVeth(host string, up bool) error {
	if _, err := l.host(host); err != nil {
		return err
	}
	link, err := netlink.LinkByName(l.VethName(host))
	if err != nil {
		return fmt.Errorf("lab %s: host %s: veth %s: %w", l.cfg.Name, host, l.VethName(host), err)
	}
	if up {
		err = netlink.LinkSetUp(link)
	} else {
		err = netlink.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("lab %s: host %s: set veth %s up=%t: %w", l.cfg.Name, host, l.VethName(host), up, err)
	}
	return nil
}

// LinkUp reports whether the root end of the host's veth is administratively up.
func (l *Lab) LinkUp(host string) (bool, error) {
	if _, err := l.host(host); err != nil {
		return false, err
	}
	link, err := netlink.LinkByName(l.VethName(host))
	if err != nil {
		return false, fmt.Errorf("lab %s: host %s: veth %s: %w", l.cfg.Name, host, l.VethName(host), err)
	}
	return link.Attrs().Flags&net.FlagUp != 0, nil
}

// labNetnsPaths lists the namespaces of the lab named name that exist in /run/netns.
func labNetnsPaths(name string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", name, err)
	}
	var paths []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			paths = append(paths, filepath.Join(netnsDir, e.Name()))
		}
	}
	return paths, nil
}

// deleteLinks deletes every veth and bridge of the root namespace named "NAME-...".
func deleteLinks(name string) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	// Veths first, then the bridge they hang on.
	for _, kind := range []string{"veth", "bridge"} {
		for _, link := range links {
			if link.Type() != kind || !strings.HasPrefix(link.Attrs().Name, name+"-") {
				continue
			}
			err := netlink.LinkDel(link)
			if err != nil && !errors.As(err, &netlink.LinkNotFoundError{}) && !isNoDevice(err) {
				errs = append(errs, fmt.Errorf("delete link %s: %w", link.Attrs().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
