package failover

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// DialFunc dials a TCP address; net.Dialer.DialContext fits.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// The health check's packets (MFSCommunication.h; see the shared notes): CLTOMA_INFO with an
// empty payload needs no registration; MooseFS 3.0.117 answers MATOCL_INFO with 149 bytes, of
// which 121-128 are the metadata version (u64 BE). Packets are type:u32 BE, length:u32 BE,
// payload.
const (
	cltomaInfo    = 510
	matoclInfo    = 511
	infoVersionAt = 121
	minInfoLen    = infoVersionAt + 8 // newer MooseFS versions append fields
	maxAnswerLen  = 1 << 16           // refused before reading: no master sends more here
	packetTypeNOP = 0                 // keepalive, skipped
	headerLen     = 8
)

// ErrBadAnswer is wrapped by Probe when the port answered, but not as a MooseFS master does:
// wrong packet type or wrong length.
var ErrBadAnswer = errors.New("not a MooseFS master's answer")

// Probe asks the master at addr (host:port of its client port, 9421) for CLTOMA_INFO, without
// registering, and returns the metadata version it reports. An answer means the master has
// loaded its metadata and serves (it opens the port only then, and it is single-threaded).
//
// The whole exchange (dial, send, answer) is bounded by ctx and only by ctx: a port that
// accepts and never answers is an error once ctx ends, wrapping ctx.Err(). An answer of
// another type or too short or too long wraps ErrBadAnswer. dial nil means a net.Dialer.
func Probe(ctx context.Context, dial DialFunc, addr string) (version uint64, err error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("probe master %s: %w", addr, errors.Join(err, ctxErr(ctx)))
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// ioErr adds ctx's error, so that a timeout can be told apart with errors.Is.
	ioErr := func(what string, err error) error {
		return fmt.Errorf("probe master %s: %s: %w", addr, what, errors.Join(err, ctxErr(ctx)))
	}
	var hdr [headerLen]byte
	binary.BigEndian.PutUint32(hdr[0:4], cltomaInfo)
	if _, err := conn.Write(hdr[:]); err != nil {
		return 0, ioErr("send CLTOMA_INFO", err)
	}
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return 0, ioErr("no answer to CLTOMA_INFO", err)
		}
		typ, n := binary.BigEndian.Uint32(hdr[0:4]), binary.BigEndian.Uint32(hdr[4:8])
		switch {
		case typ == packetTypeNOP && n == 0:
			continue
		case typ != matoclInfo:
			return 0, fmt.Errorf("probe master %s: answer of type %d (length %d), want MATOCL_INFO (%d): %w",
				addr, typ, n, matoclInfo, ErrBadAnswer)
		case n < minInfoLen || n > maxAnswerLen:
			return 0, fmt.Errorf("probe master %s: MATOCL_INFO of length %d, want %d to %d: %w",
				addr, n, minInfoLen, maxAnswerLen, ErrBadAnswer)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(conn, payload); err != nil {
			return 0, ioErr(fmt.Sprintf("MATOCL_INFO cut short (want %d bytes)", n), err)
		}
		return binary.BigEndian.Uint64(payload[infoVersionAt:]), nil
	}
}

// ctxErr is ctx.Err(), or DeadlineExceeded as soon as the deadline has passed: the
// connection's deadline, the same instant, may fire before ctx's own timer.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// Checker probes one master and counts consecutive failed probes. Not safe for concurrent
// use: one goroutine calls Check.
type Checker struct {
	dial     DialFunc
	addr     string
	timeout  time.Duration
	failures int

	failed  int    // consecutive failed probes
	version uint64 // last version seen
}

// NewChecker returns a Checker of the master at addr. Each probe is bounded by timeout (<= 0:
// by the caller's ctx only); failures consecutive failed probes (at least 1) mean down.
func NewChecker(dial DialFunc, addr string, timeout time.Duration, failures int) *Checker {
	return &Checker{dial: dial, addr: addr, timeout: timeout, failures: max(failures, 1)}
}

// Check probes once and reports whether the master is down now: the last `failures` probes
// all failed. version is the last version ever seen (0 before the first success), err this
// probe's error (nil on success); a success resets the count. A probe cut short because ctx
// itself ended is returned as an error but not counted: the caller is stopping, that says
// nothing about the master.
func (c *Checker) Check(ctx context.Context) (down bool, version uint64, err error) {
	pctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	v, err := Probe(pctx, c.dial, c.addr)
	switch {
	case err == nil:
		c.failed, c.version = 0, v
	case ctx.Err() != nil:
	default:
		c.failed++
	}
	return c.failed >= c.failures, c.version, err
}
