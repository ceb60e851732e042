package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/internal/mfsclient"
	"github.com/mfsha/mfsha/internal/mfsinfo"
	"github.com/mfsha/mfsha/internal/moosefs"
)

// DialFunc dials a TCP address; net.Dialer.DialContext fits.
type DialFunc = mfsclient.DialFunc

// The health check's packets (MFSCommunication.h; see the shared notes): CLTOMA_INFO with an
// empty payload needs no registration; the master answers MATOCL_INFO, whose layout depends
// on its MooseFS version (internal/mfsinfo decodes it: 149 bytes from 3.0.x, 205 from 4.5x).
const (
	cltomaInfo   = 510
	matoclInfo   = 511
	maxAnswerLen = 1 << 16 // refused before reading: no master sends more here
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
	b, err := mfsclient.Request(ctx, dial, addr, cltomaInfo, nil, matoclInfo, maxAnswerLen)
	if errors.Is(err, mfsclient.ErrProtocol) {
		return info, fmt.Errorf("probe: %w: %w", ErrBadAnswer, err)
	}
	if err != nil {
		return info, fmt.Errorf("probe: %w", err)
	}
	if info, err = mfsinfo.Decode(b); err != nil {
		return info, fmt.Errorf("probe master %s: %w: %w", addr, ErrBadAnswer, err)
	}
	return info, nil
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
