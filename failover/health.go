package failover

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mfsha/mfsha/internal/mfsinfo"
	"github.com/mfsha/mfsha/internal/moosefs"
)

// DialFunc dials a TCP address; net.Dialer.DialContext fits.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// The health check's packets (MFSCommunication.h; see the shared notes): CLTOMA_INFO with an
// empty payload needs no registration; the master answers MATOCL_INFO, whose layout depends
// on its MooseFS version (internal/mfsinfo decodes it: 149 bytes from 3.0.x, 205 from 4.5x).
// Packets are type:u32 BE, length:u32 BE, payload.
const (
	cltomaInfo    = 510
	matoclInfo    = 511
	maxAnswerLen  = 1 << 16 // refused before reading: no master sends more here
	packetTypeNOP = 0       // keepalive, skipped
	headerLen     = 8
)

// ErrBadAnswer is wrapped by Probe when the port answered, but not as a MooseFS master does:
// wrong packet type, or an answer of a layout it does not know (then it wraps
// mfsinfo.ErrUnknownLayout too).
var ErrBadAnswer = errors.New("not a MooseFS master's answer")

// Probe is ProbeInfo's metadata version.
func Probe(ctx context.Context, dial DialFunc, addr string) (version uint64, err error) {
	info, err := ProbeInfo(ctx, dial, addr)
	return info.MetaVersion, err
}

// ProbeInfo asks the master at addr (host:port of its client port, 9421) for CLTOMA_INFO, without
// registering, and returns what it reports: its metadata version (never 0: an answer it
// cannot read is an error) and its MooseFS version. An answer means the master has loaded its
// metadata and serves (it opens the port only then, and it is single-threaded).
//
// The whole exchange (dial, send, answer) is bounded by ctx and only by ctx: a port that
// accepts and never answers is an error once ctx ends, wrapping ctx.Err(). An answer of
// another type or layout, or too long, wraps ErrBadAnswer. dial nil means a net.Dialer.
func ProbeInfo(ctx context.Context, dial DialFunc, addr string) (info mfsinfo.Info, err error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return info, fmt.Errorf("probe master %s: %w", addr, errors.Join(err, ctxErr(ctx)))
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
		return info, ioErr("send CLTOMA_INFO", err)
	}
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return info, ioErr("no answer to CLTOMA_INFO", err)
		}
		typ, n := binary.BigEndian.Uint32(hdr[0:4]), binary.BigEndian.Uint32(hdr[4:8])
		switch {
		case typ == packetTypeNOP && n == 0:
			continue
		case typ != matoclInfo:
			return info, fmt.Errorf("probe master %s: answer of type %d (length %d), want MATOCL_INFO (%d): %w",
				addr, typ, n, matoclInfo, ErrBadAnswer)
		case n > maxAnswerLen:
			return info, fmt.Errorf("probe master %s: MATOCL_INFO of length %d, want at most %d: %w",
				addr, n, maxAnswerLen, ErrBadAnswer)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(conn, payload); err != nil {
			return info, ioErr(fmt.Sprintf("MATOCL_INFO cut short (want %d bytes)", n), err)
		}
		info, err := mfsinfo.Decode(payload)
		if err != nil {
			return info, fmt.Errorf("probe master %s: %w: %w", addr, ErrBadAnswer, err)
		}
		return info, nil
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

	failed  int             // consecutive failed probes
	version uint64          // last version seen
	mfs     moosefs.Version // MooseFS version of the last answer
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
	info, err := ProbeInfo(pctx, c.dial, c.addr)
	switch {
	case err == nil:
		c.failed, c.version, c.mfs = 0, info.MetaVersion, info.MooseFS
	case ctx.Err() != nil:
	default:
		c.failed++
	}
	return c.failed >= c.failures, c.version, err
}

// MooseFS is the MooseFS version the master reported in the last successful probe (zero
// before one).
func (c *Checker) MooseFS() moosefs.Version { return c.mfs }
