package changelog

import "strconv"

// Check is the full validation of one changelog line, given without its '\n': the
// "VERSION: TIMESTAMP|" prefix, a known operation, and its arguments and result exactly as
// the mfsmaster/restore.c of MooseFS 3.0.117 or 4.59.2 reads them (ops.go), nested
// parentheses and %XX escaping included. It is what the shipper, restore, the standby and a
// promotion run on every line before it is shipped or folded, so that no line reaches a
// stream or an mfsmaster that MooseFS did not write. Errors are *SyntaxError naming the byte.
// Check does not allocate unless it fails.
//
// It is stricter than restore.c where MooseFS itself never writes what restore.c would
// tolerate, because such a line is damage, not a change:
//   - every byte is printable ASCII (32..126): MooseFS escapes every other byte of a name,
//     path or value, so a NUL, CR, LF or raw high byte means a cut, glued or corrupted line;
//   - numbers have at least one digit and fit the field (restore.c's strtoul reads an empty
//     number as 0 and silently truncates a u32);
//   - nothing may follow the last field (restore.c ignores trailing bytes);
//   - an escaped name holds at most 255 bytes (restore.c's GETNAME cuts it there and then
//     fails on the terminator).
//
// An operation that neither version's restore.c knows is an error: the mfsmaster of the
// cluster's version could not fold it ("unknown entry"), so shipping it would only move the
// failure to every standby and restore. A newer MooseFS with new operations needs its
// grammar added to ops.go.
func Check(line []byte) error {
	_, _, n, err := parsePrefix(line)
	if err != nil {
		return err
	}
	for i, c := range line {
		if c < 32 || c >= 127 {
			switch c {
			case 0:
				return syntaxErr(i, "NUL byte at byte %d", i)
			case '\n':
				return syntaxErr(i, "newline at byte %d (a line is given without its '\\n')", i)
			}
			return syntaxErr(i, "raw byte 0x%02x at byte %d (MooseFS escapes it as %%%02X)", c, i, c)
		}
	}
	i := n
	for i < len(line) && (line[i] >= 'A' && line[i] <= 'Z' || line[i] >= '0' && line[i] <= '9' || line[i] == '_') {
		i++
	}
	switch {
	case i == len(line):
		return syntaxErr(i, "missing operation and \"(\" after \"|\"")
	case line[i] != '(':
		return syntaxErr(i, "operation name has %q at byte %d", line[i], i)
	case i == n:
		return syntaxErr(n, "missing operation name before \"(\" at byte %d", n)
	}
	c := cursor{b: line, i: i}
	if !readOp(&c, string(line[n:i])) {
		return syntaxErr(n, "unknown operation %q (not in the restore.c of MooseFS 3.0.117 or 4.59.2)", line[n:i])
	}
	if !c.bad && c.i != len(line) {
		c.fail("end of line")
	}
	if c.bad {
		return c.err(line[n:i])
	}
	return nil
}

// cursor reads one line field by field the way restore.c's EAT/GET macros do. The first
// failure sticks (bad), every later call does nothing, and Check turns it into an error.
// Nothing here allocates.
type cursor struct {
	b    []byte
	i    int
	bad  bool
	at   int    // offset of the failure
	want string // what was expected there, e.g. "','" or "a number 0-255"
	why  string // optional detail, e.g. "value too big"
}

func (c *cursor) fail(want string) {
	if !c.bad {
		c.bad, c.at, c.want = true, c.i, want
	}
}

func (c *cursor) err(op []byte) error {
	got := "end of line"
	if c.at < len(c.b) {
		got = strconv.QuoteRune(rune(c.b[c.at]))
	}
	if c.want == "%XX" {
		end := min(c.at+3, len(c.b))
		return syntaxErr(c.at, "%s: bad escape %q at byte %d (MooseFS writes %%XX, upper-case hex)", op, c.b[c.at:end], c.at)
	}
	if c.why != "" {
		return syntaxErr(c.at, "%s: %s at byte %d", op, c.why, c.at)
	}
	return syntaxErr(c.at, "%s: %s expected at byte %d, found %s", op, c.want, c.at, got)
}

// peek is the next byte, or 0 at the end of the line (restore.c sees the string's NUL).
func (c *cursor) peek() byte {
	if c.bad || c.i >= len(c.b) {
		return 0
	}
	return c.b[c.i]
}

func (c *cursor) peekAt(k int) byte {
	if c.bad || c.i+k >= len(c.b) {
		return 0
	}
	return c.b[c.i+k]
}

var eatWant = func() (w [128]string) {
	for ch := 32; ch < 127; ch++ {
		w[ch] = strconv.QuoteRune(rune(ch))
	}
	return w
}()

// eat is restore.c's EAT: the next byte must be ch.
func (c *cursor) eat(ch byte) {
	if c.bad {
		return
	}
	if c.i >= len(c.b) || c.b[c.i] != ch {
		c.fail(eatWant[ch])
		return
	}
	c.i++
}

// num reads a decimal number of at most max (GETU8, GETU16, GETU32, GETU64) and returns it
// (0 after a failure).
func (c *cursor) num(max uint64, want string) uint64 {
	if c.bad {
		return 0
	}
	start := c.i
	var v uint64
	over := false
	for c.i < len(c.b) && c.b[c.i] >= '0' && c.b[c.i] <= '9' {
		d := uint64(c.b[c.i] - '0')
		// Up to 19 digits cannot overflow 64 bits; only then is the division needed.
		if c.i-start >= 19 && v > (1<<64-1-d)/10 {
			over = true
		}
		v = v*10 + d
		c.i++
	}
	switch {
	case c.i == start:
		c.fail(want)
	case over || v > max:
		c.i = start
		c.fail(want)
		c.why = want + " expected, value too big"
		return 0
	}
	return v
}

func (c *cursor) u8()  { c.num(1<<8-1, "a number 0-255") }
func (c *cursor) u16() { c.num(1<<16-1, "a number 0-65535") }
func (c *cursor) u32() { c.num(1<<32-1, "a 32-bit number") }
func (c *cursor) u64() { c.num(1<<64-1, "a 64-bit number") }

// x32 reads hex digits of a value of at most max (GETX32 after its "0x").
func (c *cursor) x32(max uint64) {
	if c.bad {
		return
	}
	start := c.i
	var v uint64
	for c.i < len(c.b) {
		d, _, ok := unhex(c.b[c.i])
		if !ok {
			break
		}
		v = v<<4 | uint64(d)
		if v > max {
			c.i = start
			c.fail("a hex number")
			c.why = "hex number too big"
			return
		}
		c.i++
	}
	if c.i == start {
		c.fail("a hex number")
	}
}

// escaped reads an escaped name (maxLen 255, GETNAME), path or data (maxLen 0: no bound;
// GETPATH, GETDATA) up to, not including, the next ',', '(' or ')', which the caller then eats
// as the separator restore.c expects there. A '%' takes two upper-case hex digits (restore.c
// refuses lower case); ',', '(' and ')' appear in a value only escaped
// (changelog_escape_name escapes them), so a raw one is always a separator.
func (c *cursor) escaped(maxLen int) {
	if c.bad {
		return
	}
	n := 0
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ',', '(', ')':
			if maxLen > 0 && n > maxLen {
				c.fail("a name")
				c.why = "name longer than 255 bytes"
			}
			return
		case '%':
			if c.i+2 >= len(c.b) || !upperHex(c.b[c.i+1]) || !upperHex(c.b[c.i+2]) {
				c.fail("%XX")
				return
			}
			c.i += 3
		default:
			c.i++
		}
		n++
	}
}

func (c *cursor) name() { c.escaped(255) }
func (c *cursor) data() { c.escaped(0) }

// hexBytes is GETHEX: pairs of upper-case hex digits, possibly none (an SCSET label
// expression).
func (c *cursor) hexBytes() {
	for !c.bad && c.i+1 < len(c.b) && upperHex(c.b[c.i]) && upperHex(c.b[c.i+1]) {
		c.i += 2
	}
}

// lockCmd is the lock command letter of FLOCK and POSIXLOCK (flock_mr_change,
// posix_lock_mr_change: U, R or S shared, W or E exclusive, either case).
func (c *cursor) lockCmd() {
	switch c.peek() {
	case 'U', 'u', 'R', 'r', 'S', 's', 'W', 'w', 'E', 'e':
		c.i++
	default:
		c.fail("a lock command (U, R, S, W or E)")
	}
}

// u32Array is GETARRAYU32: '[' numbers and commas ']' (SNAPSHOT's group list).
func (c *cursor) u32Array() {
	c.eat('[')
	for !c.bad {
		switch ch := c.peek(); {
		case ch == ']':
			c.i++
			return
		case ch == ',':
			c.i++
		case ch >= '0' && ch <= '9':
			c.u32()
		default:
			c.fail("a number, ',' or ']'")
		}
	}
}

func upperHex(ch byte) bool { return ch >= '0' && ch <= '9' || ch >= 'A' && ch <= 'F' }
