package mfsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRequest: one packet without a session, as the health check and the lab's probes send
// it. The answer of the type asked for is returned (a keepalive before it skipped); a packet
// of another type, or longer than the bound, is a protocol error read no further; a master
// that accepts and never answers is an error wrapping the context's deadline.
func TestRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name    string
		answer  []byte // what the master writes after reading the request
		want    string // the payload; "" with wantErr
		wantErr string
	}{
		{name: "answer", answer: packet(11, "abc"), want: "abc"},
		{name: "keepalive first", answer: append(packet(typeNOP, ""), packet(11, "xyz")...), want: "xyz"},
		{name: "another type", answer: packet(12, "abc"), wantErr: "answer to packet 10 has type 12 (length 3), want 11"},
		{name: "too long", answer: header(11, 1<<20), wantErr: "type 11 of length 1048576, want at most 100"},
		{name: "refused", answer: packet(1, ""), wantErr: "refused packet 10 (answer 1)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, s := net.Pipe()
				go func() {
					defer s.Close()
					var h [8]byte
					if _, err := s.Read(h[:]); err != nil || binary.BigEndian.Uint32(h[:]) != 10 {
						t.Errorf("request header %x (%v), want type 10", h, err)
						return
					}
					s.Write(tt.answer)
				}()
				return c, nil
			}
			b, err := Request(ctx, d, "m:9421", 10, nil, 11, 100)
			switch {
			case tt.wantErr == "" && (err != nil || string(b) != tt.want):
				t.Fatalf("Request: %q, %v; want %q", b, err, tt.want)
			case tt.wantErr != "" && (!errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Request: %v; want ErrProtocol with %q", err, tt.wantErr)
			}
		})
	}
	t.Run("silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() { // accepts, reads, never answers
			c, err := ln.Accept()
			if err == nil {
				defer c.Close()
				c.Read(make([]byte, 64))
				time.Sleep(2 * time.Second)
			}
		}()
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, err := Request(sctx, nil, ln.Addr().String(), 10, nil, 11, 100); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Request of a silent master: %v; want context.DeadlineExceeded", err)
		}
	})
}

func packet(typ uint32, payload string) []byte {
	return append(header(typ, uint32(len(payload))), payload...)
}

func header(typ, n uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, typ), n)
}
