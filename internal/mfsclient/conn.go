// Package mfsclient speaks the few packets of the MooseFS client protocol (port 9421) that
// mfsha needs after a failover: a session of its own (CLTOMA_FUSE_REGISTER), the copies of a
// file's chunk (CLTOMA_FUSE_CHECK), the repair mfsfilerepair asks for (CLTOMA_FUSE_REPAIR),
// and the chunkserver list (CLTOMA_CSERV_LIST, no session). Layouts are those of
// mfscommon/MFSCommunication.h, read in the sources of 3.0.117 and 4.59.2 (mfsmaster/
// matoclserv.c, csdb.c); where they differ the master's version decides.
package mfsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Packet types (PROTO_BASE 0 in the community edition).
const (
	typeNOP         = 0
	cltomaRegister  = 400
	matoclRegister  = 401
	cltomaReadChunk = 432
	matoclReadChunk = 433
	cltomaCheck     = 440
	matoclCheck     = 441
	cltomaRepair    = 466
	matoclRepair    = 467

	headerLen = 8
	maxAnswer = 1 << 20 // refused before reading: no answer asked for here is longer
)

// DialFunc dials a TCP address; net.Dialer.DialContext fits.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrProtocol is wrapped by every error about an answer the master should not have sent.
var ErrProtocol = errors.New("not a MooseFS master's answer")

// StatusError is a master's refusal: one of the MFS_ERROR_* codes.
type StatusError struct {
	Op   string
	Code uint8
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: master answered %s", e.Op, StatusName(e.Code))
}

// Status codes this package's callers tell apart (MFSCommunication.h).
const (
	StatusENOENT      = 3
	StatusEACCES      = 4
	StatusChunkLost   = 8
	StatusNoChunk     = 13
	StatusNoPassword  = 36
	StatusBadPassword = 37
)

// StatusName names a MFS_ERROR_* code as mfsmaster's own strerror does for the common ones.
func StatusName(code uint8) string {
	names := map[uint8]string{1: "EPERM", 2: "ENOTDIR", 3: "ENOENT", 4: "EACCES", 6: "EINVAL",
		8: "CHUNKLOST", 11: "LOCKED", 13: "NOCHUNK", 15: "REGISTER (bad blob)", 33: "EROFS",
		35: "BADSESSIONID", 36: "NOPASSWORD (the export needs a password)", 37: "BADPASSWORD", 43: "CSNOTPRESENT"}
	if n, ok := names[code]; ok {
		return fmt.Sprintf("%s (%d)", n, code)
	}
	return fmt.Sprintf("status %d", code)
}

// conn is one TCP connection to a master: packets out, answers in, every exchange bounded by
// its context.
type conn struct {
	c    net.Conn
	addr string
}

func dial(ctx context.Context, d DialFunc, addr string) (*conn, error) {
	if d == nil {
		var nd net.Dialer
		d = nd.DialContext
	}
	c, err := d(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("master %s: %w", addr, err)
	}
	return &conn{c: c, addr: addr}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// roundTrip sends one packet and reads packets until one of type want: keepalives and
// packets of other types (a registered session also gets notices) are skipped.
func (c *conn) roundTrip(ctx context.Context, typ uint32, payload []byte, want uint32) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(d)
	} else {
		c.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ioErr := func(err error) error {
		return fmt.Errorf("master %s: packet %d: %w", c.addr, typ, errors.Join(err, ctx.Err()))
	}
	out := make([]byte, headerLen+len(payload))
	binary.BigEndian.PutUint32(out[0:], typ)
	binary.BigEndian.PutUint32(out[4:], uint32(len(payload)))
	copy(out[headerLen:], payload)
	if _, err := c.c.Write(out); err != nil {
		return nil, ioErr(err)
	}
	var hdr [headerLen]byte
	for {
		if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
			return nil, ioErr(err)
		}
		t, n := binary.BigEndian.Uint32(hdr[0:]), binary.BigEndian.Uint32(hdr[4:])
		if n > maxAnswer {
			return nil, fmt.Errorf("master %s: packet %d of %d bytes: %w", c.addr, t, n, ErrProtocol)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c.c, body); err != nil {
			return nil, ioErr(err)
		}
		if t == want {
			return body, nil
		}
		if t == typeNOP && n == 0 {
			continue
		}
		if t == 1 || t == 2 { // ANTOAN_UNKNOWN_COMMAND, ANTOAN_BAD_COMMAND_SIZE
			return nil, fmt.Errorf("master %s refused packet %d (answer %d): %w", c.addr, typ, t, ErrProtocol)
		}
	}
}
