package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// TestChunkserverList4: MooseFS 4.59.2 answers CLTOMA_CSERV_LIST with 73-byte entries (the
// ip as mapped for the client follows the ip; mfsmaster/csdb.c); a list that fits both
// layouts is refused rather than guessed.
func TestChunkserverList4(t *testing.T) {
	e := make([]byte, 73)
	binary.BigEndian.PutUint32(e[0:], 4<<16|59<<8|4)
	copy(e[4:8], []byte{10, 77, 1, 11})
	copy(e[8:12], []byte{10, 77, 1, 11})
	binary.BigEndian.PutUint16(e[12:], 9422)
	binary.BigEndian.PutUint64(e[24:], 1<<30)
	binary.BigEndian.PutUint32(e[32:], 5)
	ambiguous := make([]byte, 69*73)
	var answer []byte
	addr := fakeMaster(t, func(typ uint32) [][]byte { return [][]byte{packet(matoclCservList, answer)} })
	answer = e
	css, err := Chunkservers(context.Background(), nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	want := ChunkserverInfo{Addr: netip.MustParseAddrPort("10.77.1.11:9422"), Connected: true, Version: "4.59.2", TotalSpace: 1 << 30, Chunks: 5}
	if len(css) != 1 || css[0] != want {
		t.Errorf("chunkservers: got %+v, want [%+v]", css, want)
	}
	answer = ambiguous
	if _, err := Chunkservers(context.Background(), nil, addr); !errors.Is(err, ErrBadReply) {
		t.Errorf("a list of 69*73 bytes: %v, want ErrBadReply", err)
	}
}
