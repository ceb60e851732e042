package changelog

import "strings"

const hexdigits = "0123456789ABCDEF"

// needsEscape reports whether MooseFS escapes c in a name (changelog_escape_name in
// mfsmaster/changelog.c): bytes below 32, 127 and above, and the four characters , % ( ).
// Space, ':', '|' and '/' stay raw.
func needsEscape(c byte) bool {
	return c < 32 || c >= 127 || c == ',' || c == '%' || c == '(' || c == ')'
}

// AppendEscape appends s escaped as MooseFS writes names, paths and xattr values into the
// changelog: each byte that needs it becomes %XX with upper-case hex; UTF-8 is escaped byte by
// byte.
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

// Escape returns s escaped as MooseFS writes it into the changelog (see AppendEscape).
func Escape(s string) string { return string(AppendEscape(nil, s)) }

// Unescape decodes the %XX sequences of s (hex digits of either case) into raw bytes. Any other
// byte is kept as it is. A '%' without two hex digits after it is a *SyntaxError whose Offset
// is the offset of that '%' in s.
func Unescape(s string) (string, error) {
	v, _, err := unescapeArg(s, 0)
	return v, err
}

// unescapeArg decodes one argument found at offset off of its line. canonical reports whether
// AppendEscape of the result gives s back: no raw byte that MooseFS escapes, every escape
// upper-case and of a byte that MooseFS escapes. Without '%' the result is s itself (no copy).
func unescapeArg(s string, off int) (v string, canonical bool, err error) {
	pct := strings.IndexByte(s, '%')
	if pct < 0 {
		for i := 0; i < len(s); i++ {
			if needsEscape(s[i]) {
				return s, false, nil
			}
		}
		return s, true, nil
	}
	canonical = true
	for i := 0; i < pct; i++ {
		if needsEscape(s[i]) {
			canonical = false
			break
		}
	}
	out := make([]byte, pct, len(s))
	copy(out, s[:pct])
	for i := pct; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if needsEscape(c) {
				canonical = false
			}
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false, syntaxErr(off+i, "bad escape %q at byte %d", s[i:], off+i)
		}
		hi, up1, ok1 := unhex(s[i+1])
		lo, up2, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false, syntaxErr(off+i, "bad escape %q at byte %d", s[i:i+3], off+i)
		}
		b := hi<<4 | lo
		if !up1 || !up2 || !needsEscape(b) {
			canonical = false
		}
		out = append(out, b)
		i += 2
	}
	return string(out), canonical, nil
}

// unhex decodes one hex digit; upper is false for a lower-case letter, which MooseFS never
// writes.
func unhex(c byte) (v byte, upper, ok bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, false, true
	}
	return 0, false, false
}
