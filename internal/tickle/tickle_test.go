package tickle

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/sign"
)

// A tickle's checksum verifies (the one's-complement sum over pseudo-header and segment, its
// checksum included, is all ones) for IPv4 and IPv6, and its fields are the ones the client's
// TCP must see: the VIP's port to the client's, ACK, numbers 0.
func TestSegment(t *testing.T) {
	for _, c := range []Conn{
		{Local: netip.MustParseAddrPort("10.77.0.100:9421"), Remote: netip.MustParseAddrPort("10.77.0.13:40112")},
		{Local: netip.MustParseAddrPort("[fd00::100]:9420"), Remote: netip.MustParseAddrPort("[fd00::13]:51000")},
	} {
		seg := Segment(c)
		if len(seg) != 20 {
			t.Fatalf("%s: %d bytes", c, len(seg))
		}
		if got := checksum(c.Local.Addr(), c.Remote.Addr(), seg); got != 0 {
			t.Errorf("%s: the segment does not verify: residue %#04x", c, got)
		}
		if sp, dp := binary.BigEndian.Uint16(seg[0:]), binary.BigEndian.Uint16(seg[2:]); sp != c.Local.Port() || dp != c.Remote.Port() {
			t.Errorf("%s: ports %d -> %d", c, sp, dp)
		}
		if seq, ack := binary.BigEndian.Uint32(seg[4:]), binary.BigEndian.Uint32(seg[8:]); seq != 0 || ack != 0 {
			t.Errorf("%s: seq %d ack %d, want 0", c, seq, ack)
		}
		if seg[12] != 0x50 || seg[13] != 0x10 {
			t.Errorf("%s: offset/flags %#02x %#02x, want 0x50 0x10 (ACK only)", c, seg[12], seg[13])
		}
	}
	// A known IPv4 value by hand (RFC 1071): pseudo-header 0a00+0001+0a00+0002+0006+0014 =
	// 0x141d, segment 0001+0002+5010+0400 = 0x5413, sum 0x6830, complement 0x97cf.
	c := Conn{Local: netip.MustParseAddrPort("10.0.0.1:1"), Remote: netip.MustParseAddrPort("10.0.0.2:2")}
	if got := binary.BigEndian.Uint16(Segment(c)[16:]); got != 0x97cf {
		t.Errorf("checksum of %s: %#04x, want 0x97cf", c, got)
	}
}

// A list survives sealing, and one changed on the way, signed by another key or naming no
// holder is refused.
func TestListSealOpen(t *testing.T) {
	key, _ := sign.Generate()
	other, _ := sign.Generate()
	s := sign.NewSigner(key)
	v, err := sign.NewVerifier(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	l := List{Cluster: "mfs", Holder: "ma", Epoch: 7, Seq: 3, Conns: []Conn{
		{Local: netip.MustParseAddrPort("10.0.0.100:9421"), Remote: netip.MustParseAddrPort("10.0.0.13:40112")},
		{Local: netip.MustParseAddrPort("10.0.0.100:9420"), Remote: netip.MustParseAddrPort("10.0.0.12:51000")},
	}}
	b, err := Seal(s, l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(v, b)
	if err != nil || got.Holder != "ma" || got.Epoch != 7 || got.Seq != 3 || len(got.Conns) != 2 || got.Conns[1] != l.Conns[1] {
		t.Fatalf("open: %+v, %v", got, err)
	}
	tampered := []byte(strings.Replace(string(b), "10.0.0.13:40112", "10.9.9.9:40112", 1))
	if _, err := Open(v, tampered); !errors.Is(err, ErrList) {
		t.Errorf("a changed connection: %v, want ErrList", err)
	}
	b2, _ := Seal(sign.NewSigner(other), l)
	if _, err := Open(v, b2); !errors.Is(err, ErrList) {
		t.Errorf("another key: %v, want ErrList", err)
	}
	if _, err := Seal(s, List{Cluster: "mfs", Epoch: 1}); !errors.Is(err, ErrList) {
		t.Errorf("no holder: %v, want ErrList", err)
	}
}
