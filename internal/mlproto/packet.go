package mlproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Packet types of the metalogger protocol (mfscommon/MFSCommunication.h, PROTO_BASE 0 in the
// community edition, the same numbers in 3.0.117 and 4.59.2). A packet is type:u32 BE,
// length:u32 BE, then length bytes of payload.
const (
	typeNOP            = 0  // ANTOAN_NOP: keepalive, both directions, empty
	typeUnknownCommand = 1  // ANTOAN_UNKNOWN_COMMAND: the master did not know our packet
	typeBadCommandSize = 2  // ANTOAN_BAD_COMMAND_SIZE: the master refused our packet's size
	typeForceTimeout   = 5  // ANTOAN_FORCE_TIMEOUT (4.12+): timeout:u16, MATOML_FORCE_TIMEOUT
	typeRegister       = 50 // ANTOMA_REGISTER: ours, see registerPacket
	typeChanges        = 51 // MATOAN_METACHANGES_LOG: 0xFF, version:u64, "TS|OP...\0"; or 0x55
	typeMasterAck      = 52 // MATOAN_MASTER_ACK (4.x): atype:8, master version:32
)

const (
	headerLen = 8
	// maxPacket is MATOAN_MAXPACKETSIZE of both versions: a longer packet is refused before its
	// payload is read.
	maxPacket = 1500000
	// changeMarker starts every changelog packet; rotateMarker is the whole payload of a
	// "rotate" packet (the master renamed changelog.0.mfs to changelog.1.mfs).
	changeMarker = 0xFF
	rotateMarker = 0x55
	// registerWithVersion is ANTOMA_REGISTER's rversion 2: "send me the changes from version
	// N on" (the master answers from its CHANGELOG_PRESERVE_SECONDS memory); rversion 1
	// means "from now on". 3 and 4 are the Pro components and the supervisor: never ours.
	registerFromNow     = 1
	registerWithVersion = 2
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrProtocol is wrapped by every error about a packet the master should not have sent:
	// an unknown type, a wrong length, a malformed changelog line. Run returns it at once,
	// without reconnecting: a master that speaks another protocol will not speak ours after
	// a reconnect either.
	ErrProtocol = errors.New("metalogger protocol violation")
	// ErrGap is wrapped by *GapError.
	ErrGap = errors.New("changelog versions not contiguous")
)

// GapError reports a line whose version is not the one expected next: Got > Want means the
// master no longer holds the lines in between (a metalogger downloads the metadata again
// then); Got < Want means the master went back, e.g. it was started on older metadata (a new
// timeline). 3.0.117 also skips one version across a clean stop, its metadata.mfs then having
// that version: only the consumer, who sees the files, can tell that apart from a loss.
type GapError struct {
	Master    string // address of the master that sent the line
	Want, Got uint64
}

func (e *GapError) Error() string {
	if e.Got < e.Want {
		return fmt.Sprintf("master %s sent version %d, want %d: the master went back (%v)", e.Master, e.Got, e.Want, ErrGap)
	}
	return fmt.Sprintf("master %s sent version %d, want %d: versions %d-%d missing (%v)", e.Master, e.Got, e.Want, e.Want, e.Got-1, ErrGap)
}

func (e *GapError) Unwrap() error { return ErrGap }

// packetName names a packet type for error messages.
func packetName(typ uint32) string {
	switch typ {
	case typeNOP:
		return "ANTOAN_NOP (0)"
	case typeUnknownCommand:
		return "ANTOAN_UNKNOWN_COMMAND (1)"
	case typeBadCommandSize:
		return "ANTOAN_BAD_COMMAND_SIZE (2)"
	case typeForceTimeout:
		return "ANTOAN_FORCE_TIMEOUT (5)"
	case typeRegister:
		return "ANTOMA_REGISTER (50)"
	case typeChanges:
		return "MATOAN_METACHANGES_LOG (51)"
	case typeMasterAck:
		return "MATOAN_MASTER_ACK (52)"
	}
	return "unknown packet type " + strconv.FormatUint(uint64(typ), 10)
}

// registerPacket is what mfsmetalogger's masterconn_sendregister sends (the same in 3.0.117
// and 4.59.2): rversion:8, its MooseFS version (major:16, mid:8, minor:8), its timeout in
// seconds:16, and with rversion 2 the next version it wants:64. next 0 means "from now on".
func registerPacket(announce uint32, timeoutSec uint16, next uint64) []byte {
	n := 1 + 4 + 2
	if next > 0 {
		n += 8
	}
	b := make([]byte, headerLen, headerLen+n)
	binary.BigEndian.PutUint32(b[0:4], typeRegister)
	binary.BigEndian.PutUint32(b[4:8], uint32(n))
	if next > 0 {
		b = append(b, registerWithVersion)
	} else {
		b = append(b, registerFromNow)
	}
	b = binary.BigEndian.AppendUint32(b, announce)
	b = binary.BigEndian.AppendUint16(b, timeoutSec)
	if next > 0 {
		b = binary.BigEndian.AppendUint64(b, next)
	}
	return b
}

// nopPacket is the keepalive the metalogger sends every timeout/3.
var nopPacket = []byte{0, 0, 0, 0, 0, 0, 0, 0}

// readPacket reads one packet. A length above maxPacket is refused before the payload is
// read. io.EOF means the master closed the connection between two packets.
func readPacket(r *bufio.Reader) (typ uint32, payload []byte, err error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	typ, n := binary.BigEndian.Uint32(hdr[0:4]), binary.BigEndian.Uint32(hdr[4:8])
	if n > maxPacket {
		return typ, nil, fmt.Errorf("%s of length %d, more than the protocol's %d: %w", packetName(typ), n, maxPacket, ErrProtocol)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return typ, nil, fmt.Errorf("%s: payload of %d bytes: %w", packetName(typ), n, err)
	}
	return typ, payload, nil
}

// kind is what a packet from the master means to the receiver.
type kind int

const (
	kindNOP kind = iota
	kindLine
	kindRotate
	kindAck
	kindTimeout
)

// message is one decoded packet from the master.
type message struct {
	kind    kind
	line    Line   // kindLine
	ackType uint8  // kindAck: 0 the master sends the lines from the version asked, 1 from now on
	master  uint32 // kindAck: the master's MooseFS version
	timeout uint16 // kindTimeout: seconds
}

// decode checks and decodes one packet from the master. Every error wraps ErrProtocol and
// names the packet.
func decode(typ uint32, p []byte) (message, error) {
	bad := func(format string, args ...any) (message, error) {
		return message{}, fmt.Errorf("%s: %s: %w", packetName(typ), fmt.Sprintf(format, args...), ErrProtocol)
	}
	switch typ {
	case typeNOP:
		if len(p) != 0 {
			return bad("length %d, want 0", len(p))
		}
		return message{kind: kindNOP}, nil
	case typeChanges:
		return decodeChanges(p)
	case typeMasterAck:
		if len(p) != 5 {
			return bad("length %d, want 5", len(p))
		}
		return message{kind: kindAck, ackType: p[0], master: binary.BigEndian.Uint32(p[1:5])}, nil
	case typeForceTimeout:
		if len(p) != 2 {
			return bad("length %d, want 2", len(p))
		}
		return message{kind: kindTimeout, timeout: binary.BigEndian.Uint16(p)}, nil
	case typeUnknownCommand, typeBadCommandSize:
		return bad("the master refused a packet of ours (payload % x)", p)
	}
	return bad("length %d: not a packet a master sends to a metalogger", len(p))
}

// decodeChanges decodes MATOAN_METACHANGES_LOG: either the one byte 0x55 (rotate) or 0xFF,
// version:u64 BE, then the line's text after "VERSION: " up to and including a terminating
// NUL, as matomlserv_broadcast_logstring builds it. The text must hold no NUL and no newline
// before its end: the line it becomes must be exactly one line of changelog.0.mfs.
func decodeChanges(p []byte) (message, error) {
	bad := func(format string, args ...any) (message, error) {
		return message{}, fmt.Errorf("%s: %s: %w", packetName(typeChanges), fmt.Sprintf(format, args...), ErrProtocol)
	}
	if len(p) == 1 && p[0] == rotateMarker {
		return message{kind: kindRotate}, nil
	}
	if len(p) < 1+8+2 {
		return bad("length %d, want 0x55 alone or at least 11 bytes", len(p))
	}
	if p[0] != changeMarker {
		return bad("first byte 0x%02x, want 0xff", p[0])
	}
	version := binary.BigEndian.Uint64(p[1:9])
	text := p[9:]
	if text[len(text)-1] != 0 {
		return bad("version %d: text does not end with NUL", version)
	}
	text = text[:len(text)-1]
	for i, c := range text {
		if c == 0 || c == '\n' {
			return bad("version %d: byte %d of the text is 0x%02x", version, i, c)
		}
	}
	if version == 0 {
		return bad("version 0")
	}
	return message{kind: kindLine, line: newLine(version, text)}, nil
}
