package changelog

import "fmt"

const hexdigits = "0123456789ABCDEF"

// needsEscape: MooseFS (mfsmaster/changelog.c) escapes bytes below 32, 127 and above, and the
// four characters , % ( ) as %XX with upper-case hex. Space, ':', '|' and '/' stay raw.
func needsEscape(c byte) bool {
	return c < 32 || c >= 127 || c == ',' || c == '%' || c == '(' || c == ')'
}

// AppendEscape appends s escaped as MooseFS writes names into the changelog.
func AppendEscape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			dst = append(dst, '%', hexdigits[c>>4], hexdigits[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// Escape returns s escaped as MooseFS writes names into the changelog.
func Escape(s string) string { return string(AppendEscape(nil, s)) }

// Unescape decodes %XX sequences (either case of hex digits).
func Unescape(s string) (string, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			n++
		}
	}
	if n == 0 {
		return s, nil
	}
	out := make([]byte, 0, len(s)) // not len(s)-2n: a malformed "%" would make it negative
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape %q: needs two hex digits", s[i:])
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad escape %q", s[i:i+3])
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return string(out), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
