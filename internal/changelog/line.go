// Package changelog reads, checks and writes MooseFS changelog lines (3.0.117 and 4.59.2):
//
//	VERSION: TIMESTAMP|OP(ARG,ARG,...)[:RESULT]
//
// as mfsmaster writes them (changelog() in mfsmaster/changelog.c) and reads them back
// (mfsmaster/restore.c). VERSION grows by one per line over the cluster's history; TIMESTAMP
// is unix seconds. Names, paths, xattr values, ACL blobs and session info in the arguments are
// escaped by MooseFS (see Escape); numbers are not. Check validates a line against the grammar
// of its operation (ops.go); Parse accepts exactly what Check accepts.
//
// The contract is the round trip: for every b that Parse accepts, Parse(b).AppendFormat(nil)
// is b, byte for byte, and parsing that again gives an equal Line.
package changelog

import (
	"strconv"
	"strings"
)

// Line is one changelog line.
type Line struct {
	Version uint64
	Time    uint32 // unix seconds
	Op      string // e.g. "CREATE"
	// Args are the arguments split at the commas between them and unescaped (%XX decoded) into
	// raw bytes. Commas inside names are escaped by MooseFS, so they do not split. Three
	// exceptions follow what MooseFS writes: numbers lists are plain comma-separated arguments
	// (SCSET's label masks are several arguments); SNAPSHOT's group list, its 7th
	// argument, written raw as "[0,10,20]", is one argument kept as written, brackets
	// included; and a 4.x SCSET's storage modes, written raw with nested parentheses such as
	// "C(0:0:0)" or "(1:24:0)", are one argument each, kept as written. A line without
	// arguments, "OP()", has nil Args.
	Args []string
	// HasResult says whether the line ends with ":RESULT" after the argument list.
	HasResult bool
	// Result is the raw text after "):", e.g. "4" or "1,0,0"; it is never unescaped.
	Result string
	// RawArgs, when not empty, is the argument text exactly as read between the parentheses,
	// and AppendFormat writes it instead of escaping Args. Parse sets it only for arguments
	// that MooseFS's escaping would not reproduce (an escape of a byte MooseFS leaves raw,
	// such as %41), so that such a line still formats back to its
	// exact bytes. Clear it after changing Args.
	//
	// Only escapes that restore.c reads are accepted at all: upper-case hex (restore.c refuses
	// lower case), and no raw byte outside 32..126 (see Check).
	RawArgs string
}

// AppendFormat appends the line to dst, without a trailing '\n'. A parsed line is written back
// exactly as it was read. Otherwise the arguments are escaped as MooseFS escapes them (a
// SNAPSHOT group list such as "[0,10]" is written raw). AppendFormat does not validate: a Line
// built by hand with an Op that is not [A-Z0-9_]+ or a Result holding '\n' gives a line that
// Parse rejects, and Args of exactly one empty string format as "OP()", which parses as no
// arguments.
func (l Line) AppendFormat(dst []byte) []byte {
	dst = strconv.AppendUint(dst, l.Version, 10)
	dst = append(dst, ": "...)
	dst = strconv.AppendUint(dst, uint64(l.Time), 10)
	dst = append(dst, '|')
	dst = append(dst, l.Op...)
	dst = append(dst, '(')
	if l.RawArgs != "" {
		dst = append(dst, l.RawArgs...)
	} else {
		for i, a := range l.Args {
			if i > 0 {
				dst = append(dst, ',')
			}
			if isGroupArg(l.Op, i, a) || structArg(l.Op, l.Args[:i], i) && strings.IndexByte(a, '(') >= 0 {
				dst = append(dst, a...)
			} else {
				dst = AppendEscape(dst, a)
			}
		}
	}
	dst = append(dst, ')')
	if l.HasResult {
		dst = append(dst, ':')
		dst = append(dst, l.Result...)
	}
	return dst
}

// Format returns the line without a trailing '\n' (see AppendFormat).
func (l Line) Format() []byte { return l.AppendFormat(nil) }

// String is the line without a trailing '\n' (see AppendFormat).
func (l Line) String() string { return string(l.AppendFormat(nil)) }

// snapshotGroupsArg is the index of SNAPSHOT's group list: SNAPSHOT(inode, parent, name, smode,
// sesflags, uid, [gid,gid,...], cumask), from changelog_generate_gids in changelog.c.
const snapshotGroupsArg = 6

// isGroupArg reports whether a is a group list written raw at argument i of op: "[" then
// digits and commas, then "]".
func isGroupArg(op string, i int, a string) bool {
	if i != snapshotGroupsArg || op != "SNAPSHOT" || len(a) < 2 || a[0] != '[' || a[len(a)-1] != ']' {
		return false
	}
	for j := 1; j < len(a)-1; j++ {
		if c := a[j]; c != ',' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// structArg reports whether argument i of op, given the arguments before it, is one that
// MooseFS writes raw with parentheses: the storage modes of a 4.x SCSET,
// C(...),K(...),A(...),T(...) and its "(archmode:delay[:minsize])" (see opScset). In the
// 4.57+ form (third argument "1") they are arguments 6-9 and 11, in the 4.0 form 2-5 and 7.
func structArg(op string, before []string, i int) bool {
	if op != "SCSET" || i < 2 {
		return false
	}
	first := 2
	if i > 2 && before[2] == "1" {
		first = 6
	}
	return i >= first && i < first+4 || i == first+5
}
