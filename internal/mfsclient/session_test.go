package mfsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/moosefs"
)

// fakeMaster answers each packet it reads with answer(type, payload): the packets of a
// master that misbehaves, which a real one does not send on demand. The real master's
// answers are tested in failover's TestRepairLostChunkOfUnfinishedWrite (both releases).
func fakeMaster(t *testing.T, answer func(typ uint32, p []byte) (uint32, []byte)) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			defer s.Close()
			for {
				var h [8]byte
				if _, err := io.ReadFull(s, h[:]); err != nil {
					return
				}
				p := make([]byte, binary.BigEndian.Uint32(h[4:]))
				if _, err := io.ReadFull(s, p); err != nil {
					return
				}
				typ, a := answer(binary.BigEndian.Uint32(h[:]), p)
				out := binary.BigEndian.AppendUint32(nil, typ)
				out = binary.BigEndian.AppendUint32(out, uint32(len(a)))
				if _, err := s.Write(append(out, a...)); err != nil {
					return
				}
			}
		}()
		return c, nil
	}
}

var v3 = moosefs.Version{Major: 3, Minor: 0, Patch: 117}

func registered(typ uint32, p []byte) (uint32, []byte) {
	a := make([]byte, 49)
	binary.BigEndian.PutUint32(a[4:], 77) // session id
	return matoclRegister, a
}

func TestRegisterRefusedNamesTheStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := fakeMaster(t, func(typ uint32, p []byte) (uint32, []byte) {
		if typ != cltomaRegister || len(p) != 64+1+4+4+4+4+2+4 || string(p[:64]) != registerBlob || p[64] != registerNewSession {
			t.Errorf("register packet: type %d, %d bytes", typ, len(p))
		}
		return matoclRegister, []byte{StatusEACCES}
	})
	_, err := Register(ctx, d, "m:9421", v3, "test")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != StatusEACCES {
		t.Fatalf("Register: %v; want a StatusError EACCES", err)
	}
	if want := "register on master m:9421: master answered EACCES (4)"; err.Error() != want {
		t.Fatalf("error %q; want %q", err, want)
	}
}

func TestAnswersOfTheWrongShapeAreProtocolErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, answer := range map[string]func(uint32, []byte) (uint32, []byte){
		"short register answer": func(typ uint32, p []byte) (uint32, []byte) { return matoclRegister, make([]byte, 9) },
		"another message id": func(typ uint32, p []byte) (uint32, []byte) {
			if typ == cltomaRegister {
				return registered(typ, p)
			}
			return matoclReadChunk, binary.BigEndian.AppendUint32(nil, 999)
		},
		"read chunk answer of a wrong length": func(typ uint32, p []byte) (uint32, []byte) {
			if typ == cltomaRegister {
				return registered(typ, p)
			}
			return matoclReadChunk, append(p[:4:4], make([]byte, 21+5)...)
		},
	} {
		s, err := Register(ctx, fakeMaster(t, answer), "m:9421", v3, "test")
		if err == nil {
			_, err = s.ReadChunk(ctx, 5, 0)
		}
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v; want ErrProtocol", name, err)
		}
	}
}

func TestReadChunkStatusAndLocation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lost := true
	d := fakeMaster(t, func(typ uint32, p []byte) (uint32, []byte) {
		switch typ {
		case cltomaRegister:
			return registered(typ, p)
		case cltomaReadChunk:
			if len(p) != 13 || binary.BigEndian.Uint32(p[4:]) != 5 || binary.BigEndian.Uint32(p[8:]) != 2 || p[12] != 0 {
				t.Errorf("read chunk packet %x", p)
			}
			if lost {
				return matoclReadChunk, append(p[:4:4], StatusChunkLost)
			}
			a := append(p[:4:4], 2)
			a = binary.BigEndian.AppendUint64(a, 1000) // length
			a = binary.BigEndian.AppendUint64(a, 42)   // chunk
			a = binary.BigEndian.AppendUint32(a, 3)    // version
			return matoclReadChunk, append(a, make([]byte, 2*14)...)
		}
		t.Errorf("unexpected packet %d", typ)
		return 0, nil
	})
	s, err := Register(ctx, d, "m:9421", v3, "test")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 77 {
		t.Fatalf("session id %d; want 77", s.ID())
	}
	var se *StatusError
	if _, err := s.ReadChunk(ctx, 5, 2); !errors.As(err, &se) || se.Code != StatusChunkLost {
		t.Fatalf("ReadChunk: %v; want CHUNKLOST", err)
	}
	lost = false
	if loc, err := s.ReadChunk(ctx, 5, 2); err != nil || loc != (Location{ID: 42, Version: 3, Copies: 2}) {
		t.Fatalf("ReadChunk: %+v, %v; want chunk 42 version 3 with 2 copies", loc, err)
	}
}
