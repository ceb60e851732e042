package mfsclient

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/mfsha/mfsha/internal/moosefs"
)

// registerBlob is FUSE_REGISTER_BLOB_ACL: the 64 bytes every mfsmount (1.6+) starts its
// registration with.
const registerBlob = "DjI1GAQDULI5d2YjA26ypc3ovkhjvhciTQVx3CS4nYgtBoUcsljiVpsErJENHaw0"

const (
	registerNewSession   = 2 // REGISTER_NEWSESSION
	registerCloseSession = 6 // REGISTER_CLOSESESSION
)

// Session is a client session of its own on a master, as mfsmount registers one: the
// master's exports (mfsexports.cfg) decide what it may do, by the address it comes from.
// Not safe for concurrent use.
type Session struct {
	c      *conn
	id     uint32
	metaid uint64
	flags  uint8
	msgid  uint32
	ver    moosefs.Version
}

// Register opens a session on the master at addr (its client port) for the root of the file
// system, as a client of the master's own version ver (3.0.11 or later: the answers' layouts
// are those of that version). info names the session in the master's session list.
func Register(ctx context.Context, d DialFunc, addr string, ver moosefs.Version, info string) (*Session, error) {
	if ver.Compare(moosefs.Version{Major: 3, Minor: 0, Patch: 30}) < 0 {
		return nil, fmt.Errorf("register on master %s: MooseFS %s is older than 3.0.30, whose packets this speaks", addr, ver)
	}
	c, err := dial(ctx, d, addr)
	if err != nil {
		return nil, err
	}
	// blob, rcode:8 version:32 ileng:32 info pleng:32 path(with its NUL) sessionid:32. The
	// explicit sessionid 0 asks for a new session: without it a master looks one up by the
	// client's address (a patch for pre-3.0 clients) and could take over a mount's session.
	path := "/\x00"
	p := make([]byte, 0, 64+1+4+4+len(info)+4+len(path)+4)
	p = append(p, registerBlob...)
	p = append(p, registerNewSession)
	p = binary.BigEndian.AppendUint32(p, wireVersion(ver))
	p = binary.BigEndian.AppendUint32(p, uint32(len(info)))
	p = append(p, info...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(path)))
	p = append(p, path...)
	p = binary.BigEndian.AppendUint32(p, 0)
	a, err := c.roundTrip(ctx, cltomaRegister, p, matoclRegister)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("register: %w", err)
	}
	if len(a) == 1 {
		c.Close()
		return nil, &StatusError{Op: "register on master " + addr, Code: a[0]}
	}
	// version:32 sessionid:32 metaid:64 sesflags:8 ... (3.0.11 and later; the rest differs).
	if len(a) < 17 {
		c.Close()
		return nil, fmt.Errorf("register on master %s: answer of %d bytes: %w", addr, len(a), ErrProtocol)
	}
	return &Session{c: c, id: binary.BigEndian.Uint32(a[4:]), metaid: binary.BigEndian.Uint64(a[8:]), flags: a[16], ver: ver}, nil
}

// wireVersion is VERSION2INT.
func wireVersion(v moosefs.Version) uint32 {
	return uint32(v.Major)<<16 | uint32(v.Minor)<<8 | uint32(v.Patch)
}

// ID is the session's id on the master.
func (s *Session) ID() uint32 { return s.id }

// ReadOnly tells whether the export gave the session read-only access (SESFLAG_READONLY).
func (s *Session) ReadOnly() bool { return s.flags&1 != 0 }

// Close ends the session on the master (REGISTER_CLOSESESSION: it is not kept for a
// reconnection) and the connection.
func (s *Session) Close(ctx context.Context) error {
	defer s.c.Close()
	p := make([]byte, 0, 64+1+4+8)
	p = append(p, registerBlob...)
	p = append(p, registerCloseSession)
	p = binary.BigEndian.AppendUint32(p, s.id)
	p = binary.BigEndian.AppendUint64(p, s.metaid)
	a, err := s.c.roundTrip(ctx, cltomaRegister, p, matoclRegister)
	if err != nil {
		return fmt.Errorf("close session %d: %w", s.id, err)
	}
	if len(a) != 1 {
		return fmt.Errorf("close session %d on master %s: answer of %d bytes: %w", s.id, s.c.addr, len(a), ErrProtocol)
	}
	if a[0] != 0 {
		return &StatusError{Op: fmt.Sprintf("close session %d on master %s", s.id, s.c.addr), Code: a[0]}
	}
	return nil
}

// request sends msgid:32 then body, and returns the answer after its msgid, or the master's
// status as a *StatusError when the answer is msgid:32 status:8.
func (s *Session) request(ctx context.Context, op string, typ, want uint32, body []byte) ([]byte, error) {
	s.msgid++
	p := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), s.msgid)
	p = append(p, body...)
	a, err := s.c.roundTrip(ctx, typ, p, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(a) < 4 || binary.BigEndian.Uint32(a) != s.msgid {
		return nil, fmt.Errorf("%s on master %s: answer without our message id: %w", op, s.c.addr, ErrProtocol)
	}
	if len(a) == 5 {
		return nil, &StatusError{Op: op + " on master " + s.c.addr, Code: a[4]}
	}
	return a[4:], nil
}

// Copy is one copy of a chunk the master knows on a connected chunkserver.
type Copy struct {
	IP   [4]byte
	Port uint16
	Type uint8 // CHECK_VALID 0, CHECK_MARKEDFORREMOVAL 1, CHECK_WRONGVERSION 2, CHECK_WV_AND_MFR 3, CHECK_INVALID 4
}

// Valid tells whether the copy holds the chunk's current version (VALID or marked for
// removal: both still readable).
func (c Copy) Valid() bool { return c.Type <= 1 }

// Chunk is what the master says about one chunk of a file.
type Chunk struct {
	ID      uint64 // 0: the index is a hole (no chunk)
	Version uint32
	Copies  []Copy // on chunkservers connected now; 4.x leaves wrong-version copies out
}

// Chunk asks which chunk the file inode has at index indx and where its copies are
// (CLTOMA_FUSE_CHECK with a chunk index, 3.0.26 and later; 4.x's mode 0 when the mode byte is
// left out).
func (s *Session) Chunk(ctx context.Context, inode, indx uint32) (Chunk, error) {
	op := fmt.Sprintf("chunk %d of inode %d", indx, inode)
	a, err := s.request(ctx, op, cltomaCheck, matoclCheck, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, inode), indx))
	if err != nil {
		return Chunk{}, err
	}
	if len(a) < 12 || (len(a)-12)%7 != 0 {
		return Chunk{}, fmt.Errorf("%s on master %s: answer of %d bytes: %w", op, s.c.addr, len(a), ErrProtocol)
	}
	ch := Chunk{ID: binary.BigEndian.Uint64(a), Version: binary.BigEndian.Uint32(a[8:])}
	for r := a[12:]; len(r) > 0; r = r[7:] {
		ch.Copies = append(ch.Copies, Copy{IP: [4]byte(r[0:4]), Port: binary.BigEndian.Uint16(r[4:]), Type: r[6]})
	}
	return ch, nil
}

// ChunksWithoutCopies counts the chunks of the file inode that have no copy on any connected
// chunkserver (the first of CLTOMA_FUSE_CHECK's twelve counters).
func (s *Session) ChunksWithoutCopies(ctx context.Context, inode uint32) (uint32, error) {
	op := fmt.Sprintf("check inode %d", inode)
	a, err := s.request(ctx, op, cltomaCheck, matoclCheck, binary.BigEndian.AppendUint32(nil, inode))
	if err != nil {
		return 0, err
	}
	if len(a) != 48 {
		return 0, fmt.Errorf("%s on master %s: answer of %d bytes, want 4+48: %w", op, s.c.addr, len(a), ErrProtocol)
	}
	return binary.BigEndian.Uint32(a), nil
}

// Repaired is what a repair did to a file's chunks.
type Repaired struct{ NotChanged, Erased, Repaired uint32 }

// Repair asks the master to repair the file inode as root, as mfsfilerepair does: each chunk
// with no valid copy on a connected chunkserver goes back to the newest version a connected
// chunkserver holds, or, with none, is erased (the index becomes a hole). 4.x erases only when
// asked (flags bit 0; without it such a chunk reads as zeros and stays unwritable): this asks.
// The master refuses locked chunks (left unchanged).
func (s *Session) Repair(ctx context.Context, inode uint32) (Repaired, error) {
	op := fmt.Sprintf("repair inode %d", inode)
	b := binary.BigEndian.AppendUint32(nil, inode)
	b = binary.BigEndian.AppendUint32(b, 0) // uid root
	b = binary.BigEndian.AppendUint32(b, 1) // one gid
	b = binary.BigEndian.AppendUint32(b, 0) // gid root
	if s.ver.Major >= 4 {
		b = append(b, 1) // erase chunks that no copy can repair
	}
	a, err := s.request(ctx, op, cltomaRepair, matoclRepair, b)
	if err != nil {
		return Repaired{}, err
	}
	if len(a) != 12 {
		return Repaired{}, fmt.Errorf("%s on master %s: answer of %d bytes, want 4+12: %w", op, s.c.addr, len(a), ErrProtocol)
	}
	return Repaired{NotChanged: binary.BigEndian.Uint32(a), Erased: binary.BigEndian.Uint32(a[4:]), Repaired: binary.BigEndian.Uint32(a[8:])}, nil
}

// Location is the master's answer to a client about to read a chunk.
type Location struct {
	ID      uint64 // 0: a hole
	Version uint32
	Copies  int // readable copies the master offers
}

// ReadChunk asks where chunk indx of the file inode can be read, as mfsmount does before a
// read (CLTOMA_FUSE_READ_CHUNK without CHUNKOPFLAG_CANMODTIME: no atime change, no changelog
// line). The master answers CHUNKLOST (a *StatusError) only when it deems the chunk lost for
// good: no readable copy while it has every chunkserver it knows and none is still
// registering (chunks.c chunk_get_version_and_csdata, 3.0.117 and 4.59.2); before that it
// offers no copy and a client tries again.
func (s *Session) ReadChunk(ctx context.Context, inode, indx uint32) (Location, error) {
	op := fmt.Sprintf("read chunk %d of inode %d", indx, inode)
	b := binary.BigEndian.AppendUint32(nil, inode)
	b = binary.BigEndian.AppendUint32(b, indx)
	b = append(b, 0) // chunkopflags
	a, err := s.request(ctx, op, cltomaReadChunk, matoclReadChunk, b)
	if err != nil {
		return Location{}, err
	}
	// protocolid:8 length:64 chunkid:64 version:32 N*[ip:32 port:16 cs_ver:32 labelmask:32]
	// (protocolid 2; 3 for a split erasure-coded chunk: 4 or 8 parts, readable too).
	if len(a) < 21 || (len(a)-21)%14 != 0 {
		return Location{}, fmt.Errorf("%s on master %s: answer of %d bytes: %w", op, s.c.addr, len(a), ErrProtocol)
	}
	return Location{ID: binary.BigEndian.Uint64(a[9:]), Version: binary.BigEndian.Uint32(a[17:]), Copies: (len(a) - 21) / 14}, nil
}
