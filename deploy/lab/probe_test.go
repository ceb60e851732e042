package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fakeMaster answers one request per connection on loopback with the packets answer returns
// for the request type.
func fakeMaster(t *testing.T, answer func(typ uint32) [][]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				for _, p := range answer(binary.BigEndian.Uint32(hdr[0:4])) {
					c.Write(p)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func packet(typ uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestProbes(t *testing.T) {
	info := make([]byte, 149)
	copy(info, []byte{0, 3, 0, 234}) // 3.0.117: the minor is doubled on the wire
	binary.BigEndian.PutUint64(info[28:], 1000)
	binary.BigEndian.PutUint32(info[76:], 7)
	copy(info[109:], []byte{0xFF, 0xFF, 0xFF, 0xFF}) // the marker before the metadata version
	binary.BigEndian.PutUint64(info[121:], 12345)

	cs := func(flags byte, ip [4]byte, total uint64) []byte {
		e := make([]byte, 69)
		binary.BigEndian.PutUint32(e[0:], uint32(flags)<<24|3<<16|0<<8|234)
		copy(e[4:8], ip[:])
		binary.BigEndian.PutUint16(e[8:], 9422)
		binary.BigEndian.PutUint64(e[20:], total)
		return e
	}
	cslist := append(cs(0, [4]byte{10, 77, 1, 11}, 1<<30), cs(1, [4]byte{10, 77, 1, 12}, 0)...)
	mlog := []byte{0, 3, 0, 234, 10, 77, 1, 10}

	addr := fakeMaster(t, func(typ uint32) [][]byte {
		switch typ {
		case cltomaInfo:
			return [][]byte{packet(0, nil), packet(matoclInfo, info)}
		case cltomaCservList:
			return [][]byte{packet(matoclCservList, cslist)}
		case cltomaMlogList:
			return [][]byte{packet(matoclMlogList, mlog)}
		}
		return [][]byte{packet(9999, []byte{1})}
	})
	ctx := context.Background()

	mi, err := ProbeMaster(ctx, nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mi, (MasterInfo{Version: "3.0.117", MetaVersion: 12345, TotalSpace: 1000, Inodes: 7}); got != want {
		t.Errorf("master info: got %+v, want %+v", got, want)
	}
	v, err := MasterVersion(ctx, nil, addr)
	if err != nil || v != 12345 {
		t.Errorf("master version: got %d, %v, want 12345", v, err)
	}

	css, err := Chunkservers(ctx, nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	want := []ChunkserverInfo{
		{Addr: netip.MustParseAddrPort("10.77.1.11:9422"), Connected: true, Version: "3.0.117", TotalSpace: 1 << 30},
		{Addr: netip.MustParseAddrPort("10.77.1.12:9422"), Connected: false, Version: "3.0.117"},
	}
	if len(css) != len(want) || css[0] != want[0] || css[1] != want[1] {
		t.Errorf("chunkservers: got %+v, want %+v", css, want)
	}

	mls, err := Metaloggers(ctx, nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(mls) != 1 || mls[0] != (MetaloggerInfo{Addr: netip.MustParseAddr("10.77.1.10"), Version: "3.0.117"}) {
		t.Errorf("metaloggers: got %+v", mls)
	}
}

func TestProbeBadReplies(t *testing.T) {
	addr := fakeMaster(t, func(typ uint32) [][]byte {
		switch typ {
		case cltomaInfo:
			return [][]byte{packet(matoclInfo, make([]byte, 149))} // 3.0's length, no marker
		case cltomaCservList:
			return [][]byte{packet(matoclCservList, make([]byte, 70))} // not N*69
		}
		return [][]byte{packet(matoclInfo, nil)} // wrong type for the mlog list
	})
	ctx := context.Background()
	if _, err := ProbeMaster(ctx, nil, addr); !errors.Is(err, ErrBadReply) {
		t.Errorf("info without the marker: got %v, want ErrBadReply", err)
	}
	if _, err := Chunkservers(ctx, nil, addr); !errors.Is(err, ErrBadReply) {
		t.Errorf("bad chunkserver list: got %v, want ErrBadReply", err)
	}
	if _, err := Metaloggers(ctx, nil, addr); !errors.Is(err, ErrBadReply) {
		t.Errorf("wrong answer type: got %v, want ErrBadReply", err)
	}
}

func TestProbeHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = ProbeMaster(ctx, nil, ln.Addr().String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent master: got %v, want context.DeadlineExceeded", err)
	}
}
