package restorer

import (
	"bytes"
	"io"
)

// MooseFS 4.x writes `V: TS|IDLE()` every 30 s while nothing changes
// (mfsmaster/changelog.c, changelog_sendnop), to keep versions and metaloggers moving. Such a
// line changes nothing but the version, so a standby need not fold for it: a stretch of IDLE
// lines alone does not trigger FOLD_EVERY. The lines are still shipped, copied and folded
// with the next real change (or by FOLD_LINES, or by a promotion), so nothing is skipped.

// idleOp is what follows the timestamp in an IDLE line.
var idleOp = []byte("|IDLE()")

// maxIdleLine bounds an IDLE line: a u64 version, ": ", a u32 timestamp and the op.
const maxIdleLine = 20 + 2 + 10 + len("|IDLE()")

// isIdle reports whether line (without its newline) is exactly `DIGITS: DIGITS|IDLE()`.
func isIdle(line []byte) bool {
	head, ok := bytes.CutSuffix(line, idleOp)
	if !ok {
		return false
	}
	v, ts, ok := bytes.Cut(head, []byte(": "))
	return ok && allDigits(v) && allDigits(ts)
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// changeTracker passes whole changelog lines through to w and remembers the version of the
// last line that is not IDLE. Lines arrive contiguous: the first one written has version
// next. It holds at most maxIdleLine bytes of the line being written: a longer line is a
// change whatever its op.
type changeTracker struct {
	w          io.Writer
	next       uint64 // version of the line being written
	lastChange uint64 // version of the last non-IDLE line seen; 0: none
	cur        []byte // start of the line being written, up to maxIdleLine+1 bytes
}

func (c *changeTracker) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	for rest := p[:n]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		part := rest
		if i >= 0 {
			part = rest[:i]
		}
		if room := maxIdleLine + 1 - len(c.cur); room > 0 {
			c.cur = append(c.cur, part[:min(room, len(part))]...)
		}
		if i < 0 {
			break
		}
		if !isIdle(c.cur) {
			c.lastChange = c.next
		}
		c.next++
		c.cur = c.cur[:0]
		rest = rest[i+1:]
	}
	return n, err
}
