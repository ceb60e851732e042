package lab

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
)

// CutRoutes makes host unable to reach the given other hosts by adding, inside host's
// namespace, a blackhole route to each one's own address (/32). The others' packets to host
// still arrive, but whatever host sends to them is dropped (its replies, SYN-ACKs and ACKs
// included), so TCP fails in both directions: host's connects fail at once (EINVAL), theirs
// time out, and established connections stall. The rest of the lab, the VIP included, stays
// reachable. It is idempotent. RestoreRoutes undoes it; Up does not.
func (l *Lab) CutRoutes(host string, to ...string) error {
	err := l.blackholes(host, to, func(nh *netlink.Handle, r *netlink.Route) error {
		return nh.RouteReplace(r)
	})
	if err != nil {
		return fmt.Errorf("lab %s: cut routes from %s to %v: %w", l.cfg.Name, host, to, err)
	}
	return nil
}

// RestoreRoutes removes the blackhole routes that CutRoutes added from host to the given other
// hosts. It is idempotent: a route already gone is success.
func (l *Lab) RestoreRoutes(host string, to ...string) error {
	err := l.blackholes(host, to, func(nh *netlink.Handle, r *netlink.Route) error {
		if err := nh.RouteDel(r); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lab %s: restore routes from %s to %v: %w", l.cfg.Name, host, to, err)
	}
	return nil
}

// blackholes checks every host name first, then calls fn, inside host's namespace, with the
// blackhole route (main table) to each host of to.
func (l *Lab) blackholes(host string, to []string, fn func(nh *netlink.Handle, r *netlink.Route) error) error {
	var routes []*netlink.Route
	for _, other := range to {
		h, err := l.host(other)
		if err != nil {
			return err
		}
		if other == host {
			return fmt.Errorf("host %s: cannot cut a host from itself", host)
		}
		routes = append(routes, &netlink.Route{
			Dst:  &net.IPNet{IP: h.Addr.AsSlice(), Mask: net.CIDRMask(32, 32)},
			Type: syscall.RTN_BLACKHOLE,
		})
	}
	return l.withHostLink(host, func(nh *netlink.Handle, _ netlink.Link) error {
		for _, r := range routes {
			if err := fn(nh, r); err != nil {
				return fmt.Errorf("blackhole route to %s: %w", r.Dst, err)
			}
		}
		return nil
	})
}
