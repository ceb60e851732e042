// Package changelog reads and writes MooseFS changelog lines:
//
//	VERSION: TIMESTAMP|OP(ARG,ARG,...)[:RESULT]
//
// VERSION grows by one per line over the cluster's history; TIMESTAMP is unix seconds. Names and
// other strings in the arguments are escaped by MooseFS (see Escape). A parsed Line writes
// itself back byte for byte.
package changelog

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Line is one changelog line.
type Line struct {
	Version   uint64
	Time      uint32
	Op        string
	Args      []string // unescaped
	HasResult bool
	Result    string // raw text after "):", kept as written

	// rawArgs is the argument text as written, so that Format reproduces the input exactly
	// even where an argument's escaping is not MooseFS's canonical one.
	rawArgs string
}

// Errors of Parse, wrapped with the position; match with errors.Is.
var (
	ErrSyntax = errors.New("malformed changelog line")
	// ErrPartialLine is reported by Scanner for a last line without '\n': it may still be
	// being written.
	ErrPartialLine = errors.New("partial line (no newline yet)")
)

// ParseVersion reads only the version and timestamp, without allocating: the shipper's hot path.
func ParseVersion(b []byte) (version uint64, ts uint32, err error) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i >= 20 {
			return 0, 0, fmt.Errorf("%w: version too long", ErrSyntax)
		}
		d := uint64(b[i] - '0')
		if version > (1<<64-1-d)/10 {
			return 0, 0, fmt.Errorf("%w: version overflows 64 bits", ErrSyntax)
		}
		version = version*10 + d
		i++
	}
	if i == 0 {
		return 0, 0, fmt.Errorf("%w: version %q is not a number", ErrSyntax, prefix(b, 20))
	}
	if b[0] == '0' && i > 1 {
		return 0, 0, fmt.Errorf("%w: version %q has a leading zero", ErrSyntax, b[:i])
	}
	if i+1 >= len(b) || b[i] != ':' || b[i+1] != ' ' {
		return 0, 0, fmt.Errorf("%w: missing \": \" after version %d", ErrSyntax, version)
	}
	i += 2
	start := i
	var t uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		t = t*10 + uint64(b[i]-'0')
		if t > 1<<32-1 {
			return 0, 0, fmt.Errorf("%w: timestamp overflows 32 bits", ErrSyntax)
		}
		i++
	}
	if i == start {
		return 0, 0, fmt.Errorf("%w: timestamp %q is not a number", ErrSyntax, prefix(b[start:], 20))
	}
	if b[start] == '0' && i > start+1 {
		return 0, 0, fmt.Errorf("%w: timestamp %q has a leading zero", ErrSyntax, b[start:i])
	}
	if i >= len(b) || b[i] != '|' {
		return 0, 0, fmt.Errorf("%w: missing \"|\" after timestamp", ErrSyntax)
	}
	return version, uint32(t), nil
}

func prefix(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// Parse parses one line, given without its '\n'.
func Parse(b []byte) (Line, error) {
	var l Line
	v, ts, err := ParseVersion(b)
	if err != nil {
		return l, err
	}
	l.Version, l.Time = v, ts
	rest := b[bytes.IndexByte(b, '|')+1:]
	open := -1
	for i, c := range rest {
		if c == '(' {
			open = i
			break
		}
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return l, fmt.Errorf("%w: operation name has %q at byte %d", ErrSyntax, c, len(b)-len(rest)+i)
		}
	}
	if open <= 0 {
		return l, fmt.Errorf("%w: missing operation name or \"(\"", ErrSyntax)
	}
	l.Op = string(rest[:open])
	args := rest[open+1:]
	closing := -1
	for i, c := range args {
		if c == ')' {
			closing = i
			break
		}
	}
	if closing < 0 {
		return l, fmt.Errorf("%w: unterminated argument list", ErrSyntax)
	}
	l.rawArgs = string(args[:closing])
	after := args[closing+1:]
	switch {
	case len(after) == 0:
	case after[0] == ':':
		l.HasResult, l.Result = true, string(after[1:])
	default:
		return l, fmt.Errorf("%w: unexpected %q after the argument list", ErrSyntax, prefix(after, 20))
	}
	if l.rawArgs != "" {
		off := len(b) - len(args)
		for _, a := range strings.Split(l.rawArgs, ",") {
			u, err := Unescape(a)
			if err != nil {
				return l, fmt.Errorf("%w: %v at byte %d", ErrSyntax, err, off)
			}
			l.Args = append(l.Args, u)
			off += len(a) + 1
		}
	}
	return l, nil
}

// AppendFormat appends the line, without '\n', to dst. A parsed line is written back exactly as
// it was read; a line built by hand has its arguments escaped as MooseFS does.
func (l Line) AppendFormat(dst []byte) []byte {
	dst = strconv.AppendUint(dst, l.Version, 10)
	dst = append(dst, ": "...)
	dst = strconv.AppendUint(dst, uint64(l.Time), 10)
	dst = append(dst, '|')
	dst = append(dst, l.Op...)
	dst = append(dst, '(')
	if l.rawArgs != "" || len(l.Args) == 0 {
		dst = append(dst, l.rawArgs...)
	} else {
		for i, a := range l.Args {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendEscape(dst, a)
		}
	}
	dst = append(dst, ')')
	if l.HasResult {
		dst = append(dst, ':')
		dst = append(dst, l.Result...)
	}
	return dst
}

// String is the line without '\n'.
func (l Line) String() string { return string(l.AppendFormat(nil)) }
