// Package tickle makes the clients of a dead host notice at once that their TCP connections
// are gone, once another host holds the dead one's address (the VIP): CTDB's "tickle ACK".
//
// A client whose master's host died silently (power-off, partition) keeps its connection and
// resends its request with the kernel's backoff: 0.2, 0.6, 1.4, 3.0, 6.2 s after it sent it.
// Only the first resend after the VIP moved meets the new host, which answers with a reset;
// until then the client waits, however fast the new master serves (issue 11 measured 4.3 s
// for a power-off). A tickle is a bare ACK, sent from the VIP's port to the client's, with
// sequence and acknowledgement numbers 0: the client's TCP answers an out-of-window segment
// with an ACK carrying its exact numbers (RFC 793, RFC 5961), the new host has no such
// connection and answers that with a reset the client must accept, and mfsmount reconnects
// at once.
package tickle

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Conn is one TCP connection of the master's host: Local on the VIP, Remote a client's end
// (mfsmount, a chunkserver or a metalogger).
type Conn struct {
	Local, Remote netip.AddrPort
}

func (c Conn) String() string { return c.Local.String() + "<-" + c.Remote.String() }

// tcpEstablished is TCP_ESTABLISHED of the kernel's socket states.
const tcpEstablished = 1

// Established lists the established TCP connections of this network namespace whose local
// address is vip, from the kernel's socket table (sock_diag).
func Established(vip netip.Addr) ([]Conn, error) {
	family := uint8(syscall.AF_INET)
	if vip.Is6() && !vip.Is4In6() {
		family = syscall.AF_INET6
	}
	socks, err := netlink.SocketDiagTCP(family)
	if err != nil {
		return nil, fmt.Errorf("list TCP connections on %s: %w", vip, err)
	}
	var out []Conn
	for _, s := range socks {
		if s.State != tcpEstablished {
			continue
		}
		local, ok1 := netip.AddrFromSlice(s.ID.Source)
		remote, ok2 := netip.AddrFromSlice(s.ID.Destination)
		if !ok1 || !ok2 || local.Unmap() != vip.Unmap() {
			continue
		}
		out = append(out, Conn{Local: netip.AddrPortFrom(local.Unmap(), s.ID.SourcePort), Remote: netip.AddrPortFrom(remote.Unmap(), s.ID.DestinationPort)})
	}
	return out, nil
}

// Send sends one tickle per connection from this host, which must hold each Local address now
// (a raw socket bound to it; needs CAP_NET_RAW). It returns how many went out; the errors of
// the others are joined, each naming its connection.
func Send(conns []Conn) (int, error) {
	socks := map[netip.Addr]int{}
	defer func() {
		for _, fd := range socks {
			syscall.Close(fd)
		}
	}()
	var errs []error
	sent := 0
	for _, c := range conns {
		fd, ok := socks[c.Local.Addr()]
		if !ok {
			var err error
			if fd, err = rawSocket(c.Local.Addr()); err != nil {
				errs = append(errs, fmt.Errorf("tickle %s: %w", c, err))
				continue
			}
			socks[c.Local.Addr()] = fd
		}
		if err := syscall.Sendto(fd, Segment(c), 0, sockaddr(netip.AddrPortFrom(c.Remote.Addr(), 0))); err != nil {
			errs = append(errs, fmt.Errorf("tickle %s: %w", c, err))
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// rawSocket opens a raw TCP socket bound to local: the kernel writes the IP header with that
// source address, the caller the TCP header.
func rawSocket(local netip.Addr) (int, error) {
	family := syscall.AF_INET
	if local.Is6() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("raw TCP socket: %w", err)
	}
	if err := syscall.Bind(fd, sockaddr(netip.AddrPortFrom(local, 0))); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("bind a raw socket to %s (is it on this host?): %w", local, err)
	}
	return fd, nil
}

func sockaddr(a netip.AddrPort) syscall.Sockaddr {
	if a.Addr().Is4() {
		return &syscall.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &syscall.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

// Segment is the tickle for c: a 20-byte TCP header from c.Local to c.Remote, flags ACK,
// sequence and acknowledgement numbers 0, with its checksum over the IPv4 or IPv6
// pseudo-header.
func Segment(c Conn) []byte {
	h := make([]byte, 20)
	putU16(h[0:], c.Local.Port())
	putU16(h[2:], c.Remote.Port())
	// seq h[4:8] and ack h[8:12] stay 0.
	h[12] = 5 << 4       // data offset: 5 words, no options
	h[13] = 0x10         // ACK
	putU16(h[14:], 1024) // window
	putU16(h[16:], checksum(c.Local.Addr(), c.Remote.Addr(), h))
	return h
}

// checksum is the Internet checksum of seg with the pseudo-header of src and dst.
func checksum(src, dst netip.Addr, seg []byte) uint16 {
	var pseudo []byte
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		pseudo = append(append(pseudo, s[:]...), d[:]...)
		pseudo = append(pseudo, 0, syscall.IPPROTO_TCP, byte(len(seg)>>8), byte(len(seg)))
	} else {
		s, d := src.As16(), dst.As16()
		pseudo = append(append(pseudo, s[:]...), d[:]...)
		pseudo = append(pseudo, byte(len(seg)>>24), byte(len(seg)>>16), byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, syscall.IPPROTO_TCP)
	}
	var sum uint32
	for _, b := range [][]byte{pseudo, seg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func putU16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// ParseConn reads Conn.String's form back.
func ParseConn(s string) (Conn, error) {
	l, r, ok := strings.Cut(s, "<-")
	if !ok {
		return Conn{}, fmt.Errorf("connection %q: want LOCAL<-REMOTE", s)
	}
	local, err := netip.ParseAddrPort(l)
	if err != nil {
		return Conn{}, fmt.Errorf("connection %q: %w", s, err)
	}
	remote, err := netip.ParseAddrPort(r)
	if err != nil {
		return Conn{}, fmt.Errorf("connection %q: %w", s, err)
	}
	return Conn{Local: local, Remote: remote}, nil
}
