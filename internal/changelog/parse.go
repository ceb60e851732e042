package changelog

import "strings"

// ParseVersion reads only the "VERSION: TIMESTAMP|" prefix of a line, without allocating unless
// it fails: the shipper's hot path. It does not look past the '|'; Parse checks the rest. Both
// numbers must be plain decimal without leading zeros (as MooseFS writes them, and as Format
// writes them back), the version fitting in 64 bits and the timestamp in 32. Errors are
// *SyntaxError.
func ParseVersion(b []byte) (version uint64, ts uint32, err error) {
	version, ts, _, err = parsePrefix(b)
	return version, ts, err
}

// parsePrefix is ParseVersion that also returns the offset just after the '|'.
func parsePrefix(b []byte) (version uint64, ts uint32, next int, err error) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || (i < len(b) && !endsNumber(b[i])) {
		return 0, 0, 0, syntaxErr(0, "version %q is not a number", token(b))
	}
	if b[0] == '0' && i > 1 {
		return 0, 0, 0, syntaxErr(0, "version %q has a leading zero", b[:i])
	}
	if i > 20 {
		return 0, 0, 0, syntaxErr(0, "version %q overflows 64 bits", b[:i])
	}
	for _, c := range b[:i] {
		d := uint64(c - '0')
		if version > (1<<64-1-d)/10 {
			return 0, 0, 0, syntaxErr(0, "version %q overflows 64 bits", b[:i])
		}
		version = version*10 + d
	}
	if i+1 >= len(b) || b[i] != ':' || b[i+1] != ' ' {
		return 0, 0, 0, syntaxErr(i, "missing \": \" after version %d", version)
	}
	i += 2
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start || (i < len(b) && !endsNumber(b[i])) {
		return 0, 0, 0, syntaxErr(start, "timestamp %q is not a number", token(b[start:]))
	}
	if b[start] == '0' && i > start+1 {
		return 0, 0, 0, syntaxErr(start, "timestamp %q has a leading zero", b[start:i])
	}
	if i-start > 10 {
		return 0, 0, 0, syntaxErr(start, "timestamp %q overflows 32 bits", b[start:i])
	}
	var t uint64
	for _, c := range b[start:i] {
		t = t*10 + uint64(c-'0')
	}
	if t > 1<<32-1 {
		return 0, 0, 0, syntaxErr(start, "timestamp %q overflows 32 bits", b[start:i])
	}
	if i >= len(b) || b[i] != '|' {
		return 0, 0, 0, syntaxErr(i, "missing \"|\" after timestamp %d", t)
	}
	return version, uint32(t), i + 1, nil
}

// endsNumber reports whether c may follow a number that is then checked for its separator;
// any other byte makes the whole token "not a number".
func endsNumber(c byte) bool { return c == ':' || c == ' ' || c == '|' || c == '(' }

// token is the start of b up to the next separator, at most 24 bytes, for error messages.
func token(b []byte) string {
	n := 0
	for n < len(b) && n < 24 && !endsNumber(b[n]) {
		n++
	}
	return string(b[:n])
}

// prefix is at most the first n bytes of s, for error messages.
func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Parse parses one line given without its '\n'. It accepts exactly the lines that Check
// accepts; errors are Check's *SyntaxError (errors.Is(err, ErrSyntax)) saying what is wrong and
// at which byte, with a zero Line. The Line's strings do not alias b.
func Parse(b []byte) (Line, error) {
	if err := Check(b); err != nil {
		return Line{}, err
	}
	var l Line
	v, ts, n, _ := parsePrefix(b)
	l.Version, l.Time = v, ts
	s := string(b[n:]) // one copy; Op, arguments and Result are substrings of it
	open := strings.IndexByte(s, '(')
	l.Op = s[:open]
	// The argument list ends at the ')' that closes the first '(': inside it, raw parentheses
	// only nest (4.x SCSET), names escape theirs.
	end, depth := open+1, 1
	for ; depth > 0; end++ {
		switch s[end] {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	raw := s[open+1 : end-1]
	if end < len(s) { // Check saw ':' here
		l.HasResult, l.Result = true, s[end+1:]
	}
	args, canonical, err := splitArgs(l.Op, raw, n+open+1)
	if err != nil {
		return Line{}, err
	}
	l.Args = args
	if !canonical {
		l.RawArgs = raw
	}
	return l, nil
}

// splitArgs splits the argument text raw, found at offset off of its line, at its top-level
// commas and unescapes each argument, except a structured one (a SNAPSHOT group list, a 4.x
// SCSET storage mode such as "C(0:0:0)"), which is kept as written. canonical reports whether
// AppendFormat of the result gives raw back.
func splitArgs(op, raw string, off int) (args []string, canonical bool, err error) {
	if raw == "" {
		return nil, true, nil
	}
	args = make([]string, 0, strings.Count(raw, ",")+1)
	canonical = true
	for start := 0; ; {
		end, depth := start, 0
		for ; end < len(raw); end++ {
			c := raw[end]
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			} else if c == ',' && depth == 0 {
				break
			}
		}
		if len(args) == snapshotGroupsArg && op == "SNAPSHOT" && raw[start] == '[' {
			if j := strings.IndexByte(raw[start:], ']'); j >= 0 && isGroupArg(op, len(args), raw[start:start+j+1]) {
				end = start + j + 1 // Check saw ',' after it
			}
		}
		a := raw[start:end]
		switch {
		case isGroupArg(op, len(args), a):
			// a group list, kept raw
		case strings.IndexByte(a, '(') >= 0:
			// a structured SCSET argument, kept raw (Check allows raw parentheses nowhere
			// else); Format writes it raw where SCSET's form has one
			if !structArg(op, args, len(args)) {
				canonical = false
			}
		default:
			v, canon, err := unescapeArg(a, off+start)
			if err != nil {
				return nil, false, err
			}
			// A value that Format would write raw is not what it escaped.
			if !canon || isGroupArg(op, len(args), v) || structArg(op, args, len(args)) && strings.IndexByte(v, '(') >= 0 {
				canonical = false
			}
			a = v
		}
		args = append(args, a)
		if end == len(raw) {
			return args, canonical, nil
		}
		start = end + 1
		if start == len(raw) { // a trailing comma: one more, empty argument
			return append(args, ""), canonical, nil
		}
	}
}
