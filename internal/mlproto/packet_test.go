package mlproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func packet(typ uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func changes(version uint64, text string) []byte {
	p := []byte{changeMarker}
	p = binary.BigEndian.AppendUint64(p, version)
	p = append(p, text...)
	return append(p, 0)
}

// The registration must be byte for byte mfsmetalogger's (masterconn_sendregister).
func TestRegisterPacket(t *testing.T) {
	got := registerPacket(Version2Int(3, 0, 117), 10, 0)
	want := []byte{0, 0, 0, 50, 0, 0, 0, 7, 1, 0, 3, 0, 117, 0, 10}
	if !bytes.Equal(got, want) {
		t.Fatalf("register from now: % x, want % x", got, want)
	}
	got = registerPacket(Version2Int(4, 59, 2), 60, 0x0102030405060708)
	want = []byte{0, 0, 0, 50, 0, 0, 0, 15, 2, 0, 4, 59, 2, 0, 60, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(got, want) {
		t.Fatalf("register with version: % x, want % x", got, want)
	}
}

func TestDecodeLine(t *testing.T) {
	text := "1795588342|CREATE(2,f%2C1%28%25%29%C3%A9%09tab.txt,1,420,18,0,0,0):3"
	m, err := decode(typeChanges, changes(4, text))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(m.line.Text), "4: "+text+"\n"; m.kind != kindLine || m.line.Version != 4 || got != want {
		t.Fatalf("decoded %v version %d %q, want a line of version 4 %q", m.kind, m.line.Version, got, want)
	}
	if m, err := decode(typeChanges, []byte{rotateMarker}); err != nil || m.kind != kindRotate {
		t.Fatalf("0x55: %v, %v; want a rotation", m.kind, err)
	}
	if m, err := decode(typeMasterAck, []byte{1, 0, 4, 59, 2}); err != nil || m.kind != kindAck || m.ackType != 1 || m.master != Version2Int(4, 59, 2) {
		t.Fatalf("ack: %+v, %v", m, err)
	}
	if m, err := decode(typeForceTimeout, []byte{0, 30}); err != nil || m.kind != kindTimeout || m.timeout != 30 {
		t.Fatalf("force timeout: %+v, %v", m, err)
	}
}

// Every packet a master must not send is refused with an error naming it.
func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     uint32
		payload []byte
		want    string
	}{
		{"unknown type", 77, []byte{1, 2}, "unknown packet type 77"},
		{"register echoed", typeRegister, nil, "ANTOMA_REGISTER (50)"},
		{"unknown command", typeUnknownCommand, nil, "ANTOAN_UNKNOWN_COMMAND (1)"},
		{"NOP with payload", typeNOP, []byte{0}, "ANTOAN_NOP (0): length 1, want 0"},
		{"short line", typeChanges, []byte{0xff, 0, 0}, "length 3"},
		{"no 0xff", typeChanges, append([]byte{0xfe}, changes(5, "1|IDLE()")[1:]...), "first byte 0xfe"},
		{"no NUL", typeChanges, changes(5, "1|IDLE()")[:17], "version 5: text does not end with NUL"},
		{"newline inside", typeChanges, changes(5, "1|IDLE()\n6: 1|IDLE()"), "version 5: byte 8 of the text is 0x0a"},
		{"NUL inside", typeChanges, changes(5, "1|ID\x00LE()"), "byte 4 of the text is 0x00"},
		{"version 0", typeChanges, changes(0, "1|IDLE()"), "version 0"},
		{"short ack", typeMasterAck, []byte{0}, "MATOAN_MASTER_ACK (52): length 1, want 5"},
		{"long timeout", typeForceTimeout, []byte{0, 0, 1}, "ANTOAN_FORCE_TIMEOUT (5): length 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.typ, tc.payload)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrProtocol naming %q", err, tc.want)
			}
		})
	}
}

func TestReadPacket(t *testing.T) {
	in := append(packet(typeNOP, nil), packet(typeChanges, changes(9, "1|IDLE()"))...)
	r := bufio.NewReader(bytes.NewReader(in))
	if typ, p, err := readPacket(r); err != nil || typ != typeNOP || len(p) != 0 {
		t.Fatalf("first packet: %d % x %v", typ, p, err)
	}
	if typ, p, err := readPacket(r); err != nil || typ != typeChanges || len(p) != 1+8+9 {
		t.Fatalf("second packet: %d % x %v", typ, p, err)
	}
	if _, _, err := readPacket(r); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}

	huge := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, typeChanges), maxPacket+1)
	if _, _, err := readPacket(bufio.NewReader(bytes.NewReader(huge))); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "length 1500001") {
		t.Fatalf("oversized packet: %v, want ErrProtocol naming the length", err)
	}
	cut := packet(typeChanges, changes(9, "1|IDLE()"))[:12]
	if _, _, err := readPacket(bufio.NewReader(bytes.NewReader(cut))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("packet cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestGapError(t *testing.T) {
	err := error(&GapError{Master: "m:9419", Want: 10, Got: 13})
	if !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "versions 10-12 missing") {
		t.Fatalf("forward gap: %v", err)
	}
	err = &GapError{Master: "m:9419", Want: 10, Got: 4}
	if !strings.Contains(err.Error(), "went back") {
		t.Fatalf("backwards: %v", err)
	}
}
