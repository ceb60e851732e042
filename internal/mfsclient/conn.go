// Package mfsclient speaks the few packets of the MooseFS client protocol (port 9421) that
// mfsha needs: a session of its own (CLTOMA_FUSE_REGISTER), the copies of a file's chunk
// (CLTOMA_FUSE_CHECK), the repair mfsfilerepair asks for (CLTOMA_FUSE_REPAIR), and one
// packet without a session (Request: the health check's CLTOMA_INFO, the lab's lists). Layouts are those of
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
		return nil, fmt.Errorf("master %s: %w", addr, errors.Join(err, CtxErr(ctx)))
	}
	return &conn{c: c, addr: addr}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// roundTrip sends one packet and reads packets until one of type want: keepalives and
// packets of other types (a registered session also gets notices) are skipped.
func (c *conn) roundTrip(ctx context.Context, typ uint32, payload []byte, want uint32) ([]byte, error) {
	return c.exchange(ctx, typ, payload, want, maxAnswer, false)
}

// Request opens a connection to addr (d nil: a net.Dialer), sends one packet of type typ with
// payload and returns the payload of the answer of type want, at most max bytes long. No
// session is needed for the packets it is meant for (CLTOMA_INFO, the server lists). A
// keepalive is skipped; a packet of any other type, or longer than max, is an error wrapping
// ErrProtocol, read no further. The whole exchange is bounded by ctx alone: an error once
// ctx has ended (or its deadline passed) wraps ctx's error too (CtxErr), so that a port that
// accepts and never answers is told apart with errors.Is.
func Request(ctx context.Context, d DialFunc, addr string, typ uint32, payload []byte, want, max uint32) ([]byte, error) {
	c, err := dial(ctx, d, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.exchange(ctx, typ, payload, want, max, true)
}

// exchange writes one packet and reads answers until one of type want, skipping keepalives
// and, unless strict, packets of other types.
func (c *conn) exchange(ctx context.Context, typ uint32, payload []byte, want, max uint32, strict bool) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(d)
	} else {
		c.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ioErr := func(what string, err error) error {
		return fmt.Errorf("master %s: packet %d: %s: %w", c.addr, typ, what, errors.Join(err, CtxErr(ctx)))
	}
	out := make([]byte, headerLen+len(payload))
	binary.BigEndian.PutUint32(out[0:], typ)
	binary.BigEndian.PutUint32(out[4:], uint32(len(payload)))
	copy(out[headerLen:], payload)
	if _, err := c.c.Write(out); err != nil {
		return nil, ioErr("send", err)
	}
	var hdr [headerLen]byte
	for {
		if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
			return nil, ioErr("no answer", err)
		}
		t, n := binary.BigEndian.Uint32(hdr[0:]), binary.BigEndian.Uint32(hdr[4:])
		switch {
		case t == typeNOP && n == 0:
			continue
		case t == 1 || t == 2: // ANTOAN_UNKNOWN_COMMAND, ANTOAN_BAD_COMMAND_SIZE
			return nil, fmt.Errorf("master %s refused packet %d (answer %d): %w", c.addr, typ, t, ErrProtocol)
		case strict && t != want:
			return nil, fmt.Errorf("master %s: answer to packet %d has type %d (length %d), want %d: %w", c.addr, typ, t, n, want, ErrProtocol)
		case n > max:
			return nil, fmt.Errorf("master %s: answer to packet %d: type %d of length %d, want at most %d: %w", c.addr, typ, t, n, max, ErrProtocol)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c.c, body); err != nil {
			return nil, ioErr(fmt.Sprintf("answer of type %d cut short (want %d bytes)", t, n), err)
		}
		if t == want {
			return body, nil
		}
	}
}

// CtxErr is ctx.Err(), or context.DeadlineExceeded as soon as ctx's deadline has passed: a
// connection's deadline, the same instant, may fire before ctx's own timer.
func CtxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
