package changelog

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// captures are the changelogs of real mfsmasters, copied verbatim (see testdata/README):
// MooseFS 3.0.117 and 4.59.2.
var captures = []string{"testdata/real-changelog.txt", "testdata/real-changelog-4.59.2.txt"}

// captured returns the lines of one capture, without their '\n'.
func captured(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	lines := bytes.Split(b[:len(b)-1], []byte{'\n'})
	if len(lines) < 90 {
		t.Fatalf("%s has %d lines, want the 100 or more captured ones", path, len(lines))
	}
	return lines
}

// realLines returns the lines of every capture.
func realLines(t testing.TB) [][]byte {
	t.Helper()
	var all [][]byte
	for _, c := range captures {
		all = append(all, captured(t, c)...)
	}
	return all
}

// TestRealLinesRoundTrip: every line of both captures parses, formats back byte for byte, and
// formats the same from its arguments alone.
func TestRealLinesRoundTrip(t *testing.T) {
	for _, c := range captures {
		for i, raw := range captured(t, c) {
			l, err := Parse(raw)
			if err != nil {
				t.Fatalf("%s line %d %q: %v", c, i+1, raw, err)
			}
			if got, want := l.Version, uint64(i+1); got != want {
				t.Errorf("%s line %d: version %d, want %d", c, i+1, got, want)
			}
			if got := l.AppendFormat(nil); !bytes.Equal(got, raw) {
				t.Errorf("%s line %d round trip:\n got %q\nwant %q", c, i+1, got, raw)
			}
			// MooseFS's own lines are canonically escaped: formatting Args reproduces them.
			if l.RawArgs != "" {
				t.Errorf("%s line %d %q: RawArgs %q set, want canonical arguments", c, i+1, raw, l.RawArgs)
			}
			hand := Line{Version: l.Version, Time: l.Time, Op: l.Op, Args: l.Args, HasResult: l.HasResult, Result: l.Result}
			if got := hand.AppendFormat(nil); !bytes.Equal(got, raw) {
				t.Errorf("%s line %d from its arguments:\n got %q\nwant %q", c, i+1, got, raw)
			}
			v, ts, err := ParseVersion(raw)
			if err != nil || v != l.Version || ts != l.Time {
				t.Errorf("ParseVersion(%q) = %d, %d, %v; want %d, %d", raw, v, ts, err, l.Version, l.Time)
			}
		}
	}
}

// TestRealLinesFields checks the arguments of real lines whose splitting is not obvious.
func TestRealLinesFields(t *testing.T) {
	byOp := map[string][]Line{}
	for _, raw := range captured(t, captures[0]) {
		l, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		byOp[l.Op] = append(byOp[l.Op], l)
	}
	for _, tc := range []struct {
		op   string
		want []string
	}{
		{"SNAPSHOT", []string{"2", "1", "snap dir", "0", "72", "0", "[0,10,20]", "18"}},
		{"SETXATTR", []string{"2", "user.comment", "val,ue (%) \x00\x01\xff", "0"}},
		{"SYMLINK", []string{"1", "sym.txt", "../target,with%odd(chars)é", "0", "0"}},
		{"SETACL", []string{"12", "420", "1", "1", "6", "4", "4", "4", "1", "0", "\x00\x00\x03\xe8\x00\x04"}},
		{"CREATE", []string{"1", "f,1(%)é\ttab.txt", "1", "438", "18", "0", "0", "0"}},
		{"CREATE", []string{"1", "nl\nname", "1", "438", "18", "0", "0", "0"}},
		{"CREATE", []string{"1", "bad\xff\xfeutf8", "1", "438", "18", "0", "0", "0"}},
		{"CREATE", []string{"1", "日本語.txt", "1", "438", "18", "0", "0", "0"}},
		{"CREATE", []string{"1", "with space:colon|pipe.txt", "1", "438", "18", "0", "0", "0"}},
		{"MOVE", []string{"1", "dir1", "1", "dir 2(renamed)"}},
		{"SCREN", []string{"sc2", "sc 3"}},
	} {
		found := false
		for _, l := range byOp[tc.op] {
			if reflect.DeepEqual(l.Args, tc.want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no real %s line has arguments %q; have %q", tc.op, tc.want, byOp[tc.op])
		}
	}
	if got := byOp["SCSET"]; len(got) == 0 || len(got[0].Args) != 32 || got[0].Args[0] != "sc,1(x)" {
		t.Errorf("SCSET lines %q, want 32 arguments naming sc,1(x) first", got)
	}
	if got := byOp["SNAPSHOT"]; len(got) == 0 || !got[0].HasResult || got[0].Result != "18,0,0,0,0,1" {
		t.Errorf("SNAPSHOT lines %q, want the raw result 18,0,0,0,0,1 first", got)
	}
}

// TestRealLinesFields4 checks the arguments of the 4.59.2 lines whose form changed.
func TestRealLinesFields4(t *testing.T) {
	byOp := map[string][]Line{}
	for _, raw := range captured(t, captures[1]) {
		l, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		byOp[l.Op] = append(byOp[l.Op], l)
	}
	for _, tc := range []struct {
		op   string
		want []string
	}{
		{"SCSET", []string{"sc,1(x)", "1", "1", "my class, (desc)", "5", "0", "C(0:0:0)", "K(2:0:255)", "A(0:0:0:0)", "T(1:0:0:255)", "1", "(5:48:0)", "0", "0", "C0", "C1", "C0"}},
		{"SCSET", []string{"sc,1(x)", "0", "1", "changed%desc", "5", "0", "C(0:0:0)", "K(2:0:255)", "A(0:0:0:0)", "T(1:0:0:255)", "2", "(5:48:0)", "0", "0", "C0", "C1", "C0"}},
		{"SESADD", []string{"#18367088257487361530", "1", "8", "0000", "0", "0", "999", "999", "0xFFFF", "0", "4294967295", "0x00000000", "172841729", "/tmp/capchl/mnt"}},
		{"MOVE", []string{"1", "dir1", "1", "dir 2(renamed)", "2"}},
		{"PATADD", []string{"odd,%(name)", "1000", "4294967295", "10", "0", "0", "168", "0", "0"}},
		{"IDLE", nil},
	} {
		found := false
		for _, l := range byOp[tc.op] {
			if reflect.DeepEqual(l.Args, tc.want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no real %s line has arguments %q; have %q", tc.op, tc.want, byOp[tc.op])
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Line
	}{
		{`5: 1795591642|CREATE(1,f%2C1%28%25%29%C3%A9%09tab.txt,1,438,18,0,0,0):4`,
			Line{Version: 5, Time: 1795591642, Op: "CREATE", Args: []string{"1", "f,1(%)é\ttab.txt", "1", "438", "18", "0", "0", "0"}, HasResult: true, Result: "4"}},
		{`1: 1795591635|SETMETAID(7712007351827270746)`,
			Line{Version: 1, Time: 1795591635, Op: "SETMETAID", Args: []string{"7712007351827270746"}}},
		{`18446744073709551615: 4294967295|IDLE()`, Line{Version: 1<<64 - 1, Time: 1<<32 - 1, Op: "IDLE"}},
		{`0: 0|IDLE()`, Line{Op: "IDLE"}},
		{`1: 2|SETMETAID(18446744073709551615)`, Line{Version: 1, Time: 2, Op: "SETMETAID", Args: []string{"18446744073709551615"}}},
		{`1: 2|SETMETAID(0018446744073709551615)`, Line{Version: 1, Time: 2, Op: "SETMETAID", Args: []string{"0018446744073709551615"}}},
		{`9: 17|SESSION():5`, Line{Version: 9, Time: 17, Op: "SESSION", HasResult: true, Result: "5"}},
		{`9: 17|EMPTYTRASH():1,2`, Line{Version: 9, Time: 17, Op: "EMPTYTRASH", HasResult: true, Result: "1,2"}},
		{`9: 17|SETPATH(3,)`, Line{Version: 9, Time: 17, Op: "SETPATH", Args: []string{"3", ""}}},
		{`9: 17|SETXATTR(3,,,0)`, Line{Version: 9, Time: 17, Op: "SETXATTR", Args: []string{"3", "", "", "0"}}},
		{`9: 17|SETPATH(1,%7F%25%2C%28%29)`, Line{Version: 9, Time: 17, Op: "SETPATH", Args: []string{"1", "\x7f%,()"}}},
		{`9: 17|TRASH_RECOVER(5,1,a/b%28c%29,18,0,0,0):(a/b%28c%29)`, Line{Version: 9, Time: 17, Op: "TRASH_RECOVER", Args: []string{"5", "1", "a/b(c)", "18", "0", "0", "0"}, HasResult: true, Result: "(a/b%28c%29)"}},
		{`9: 17|SNAPSHOT(1,2,n,0,0,0,[0],18)`, Line{Version: 9, Time: 17, Op: "SNAPSHOT", Args: []string{"1", "2", "n", "0", "0", "0", "[0]", "18"}}},
		{`9: 17|SNAPSHOT(1,2,n,0,0,0,[],18)`, Line{Version: 9, Time: 17, Op: "SNAPSHOT", Args: []string{"1", "2", "n", "0", "0", "0", "[]", "18"}}},
		{`9: 17|CREATE(1,[a%2Cb],1,420,18,0,0,0):3`, Line{Version: 9, Time: 17, Op: "CREATE", Args: []string{"1", "[a,b]", "1", "420", "18", "0", "0", "0"}, HasResult: true, Result: "3"}},
		// 4.x SCSET: the storage modes nest parentheses and are kept raw; the name and the
		// description are escaped.
		{`9: 17|SCSET(sc_two,1,1,my class%2C %28desc%29,0,0,C(0:0:0),K(2:0:255),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,FF,FF):10`,
			Line{Version: 9, Time: 17, Op: "SCSET", Args: []string{"sc_two", "1", "1", "my class, (desc)", "0", "0", "C(0:0:0)", "K(2:0:255)", "A(0:0:0:0)", "T(0:0:0:0)", "1", "(1:24:0)", "0", "0", "FF", "FF"}, HasResult: true, Result: "10"}},
		{`9: 17|SCSET(s,0,C(0:0),K(1:0),A(0:0:0),T(0:0:0),1,24,0,0,):3`,
			Line{Version: 9, Time: 17, Op: "SCSET", Args: []string{"s", "0", "C(0:0)", "K(1:0)", "A(0:0:0)", "T(0:0:0)", "1", "24", "0", "0", ""}, HasResult: true, Result: "3"}},
		// Text MooseFS would not write but its restore.c reads: accepted, and kept raw so that
		// it formats back.
		{`9: 17|SETPATH(1,%41)`, Line{Version: 9, Time: 17, Op: "SETPATH", Args: []string{"1", "A"}, RawArgs: "1,%41"}},
		// Refused: an escaped group list, an escaped storage mode.
		{`9: 17|SNAPSHOT(1,2,n,0,0,0,[0%2C1],18)`, Line{}},
		{`9: 17|SCSET(s,1,1,C%28x%29,0,0,C(0:0:0),K(0:0:0),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,-):3`,
			Line{Version: 9, Time: 17, Op: "SCSET", Args: []string{"s", "1", "1", "C(x)", "0", "0", "C(0:0:0)", "K(0:0:0)", "A(0:0:0:0)", "T(0:0:0:0)", "1", "(1:24:0)", "0", "0", "-"}, HasResult: true, Result: "3"}},
		{`9: 17|SCSET(s,1,1,d,0,0,C%280:0:0%29,K(1:0:0),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,-):3`, Line{}},
	} {
		got, err := Parse([]byte(tc.in))
		if tc.want.Op == "" && tc.want.Version == 0 { // must be refused
			if err == nil {
				t.Errorf("Parse(%q) accepted it", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
		}
		if out := got.String(); out != tc.in {
			t.Errorf("Parse(%q).String() = %q", tc.in, out)
		}
	}
}

// TestFormatHandBuilt: a Line built from raw values is escaped as MooseFS escapes it.
func TestFormatHandBuilt(t *testing.T) {
	for _, tc := range []struct {
		l    Line
		want string
	}{
		{Line{Version: 7, Time: 1795591642, Op: "CREATE", Args: []string{"1", "f,1(%)é\ttab.txt", "1", "420", "18", "0", "0", "0"}, HasResult: true, Result: "3"},
			`7: 1795591642|CREATE(1,f%2C1%28%25%29%C3%A9%09tab.txt,1,420,18,0,0,0):3`},
		{Line{Version: 37, Time: 1795595978, Op: "SETXATTR", Args: []string{"2", "user.comment", "val,ue (%) \x00\x01\xff", "0"}},
			`37: 1795595978|SETXATTR(2,user.comment,val%2Cue %28%25%29 %00%01%FF,0)`},
		{Line{Version: 82, Time: 1795595985, Op: "SNAPSHOT", Args: []string{"2", "1", "snap dir", "0", "72", "0", "[0,10,20]", "18"}, HasResult: true, Result: "18,0,0,0,0,3"},
			`82: 1795595985|SNAPSHOT(2,1,snap dir,0,72,0,[0,10,20],18):18,0,0,0,0,3`},
		// Only SNAPSHOT's 7th argument is a raw group list.
		{Line{Version: 1, Time: 2, Op: "CREATE", Args: []string{"1", "[0,10]", "1", "4", "5", "6", "7", "0"}, HasResult: true, Result: "9"},
			`1: 2|CREATE(1,[0%2C10],1,4,5,6,7,0):9`},
		{Line{Version: 1, Time: 2, Op: "SETXATTR", Args: []string{"1", "sp ace:colon|pipe/slash", "\x7f\x80", "0"}},
			`1: 2|SETXATTR(1,sp ace:colon|pipe/slash,%7F%80,0)`},
		{Line{Version: 1, Time: 2, Op: "SETPATH", Args: []string{"ignored"}, RawArgs: "1,%41"}, `1: 2|SETPATH(1,%41)`},
		// Only SCSET's storage modes are written raw; its name and description are escaped.
		{Line{Version: 1, Time: 2, Op: "SCSET", Args: []string{"C(1)", "1", "1", "K(2)", "0", "0", "C(0:0:0)", "K(2:0:255)", "A(0:0:0:0)", "T(0:0:0:0)", "1", "(1:24:0)", "0", "0", "FF", "FF"}, HasResult: true, Result: "10"},
			`1: 2|SCSET(C%281%29,1,1,K%282%29,0,0,C(0:0:0),K(2:0:255),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,FF,FF):10`},
	} {
		got := tc.l.String()
		if got != tc.want {
			t.Errorf("%#v.String()\n got %s\nwant %s", tc.l, got, tc.want)
			continue
		}
		if b := tc.l.Format(); string(b) != tc.want {
			t.Errorf("Format() = %q, want %q", b, tc.want)
		}
		back, err := Parse([]byte(got))
		if err != nil || !reflect.DeepEqual(back.Args, tc.l.Args) && tc.l.RawArgs == "" {
			t.Errorf("Parse(%q) = %q, %v; want arguments %q", got, back.Args, err, tc.l.Args)
		}
	}
	if got, want := string(Line{Op: "IDLE"}.AppendFormat([]byte("prefix "))), "prefix 0: 0|IDLE()"; got != want {
		t.Errorf("AppendFormat = %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		off      int
	}{
		{"", `version "" is not a number`, 0},
		{"12a: 1|X()", `version "12a" is not a number`, 0},
		{"x: 1|X()", `version "x" is not a number`, 0},
		{"12 1|X()", `missing ": " after version 12`, 2},
		{"12:1|X()", `missing ": " after version 12`, 2},
		{"12", `missing ": " after version 12`, 2},
		{"01: 1|X()", `version "01" has a leading zero`, 0},
		{"18446744073709551616: 1|X()", `version "18446744073709551616" overflows 64 bits`, 0},
		{"123456789012345678901: 1|X()", `version "123456789012345678901" overflows 64 bits`, 0},
		{"1: |X()", `timestamp "" is not a number`, 3},
		{"1: 17X()", `timestamp "17X" is not a number`, 3},
		{"1: 17 |X()", `missing "|" after timestamp 17`, 5},
		{"1: 17", `missing "|" after timestamp 17`, 5},
		{"1: 017|X()", `timestamp "017" has a leading zero`, 3},
		{"1: 4294967296|X()", `timestamp "4294967296" overflows 32 bits`, 3},
		{"1: 17|", `missing operation and "(" after "|"`, 6},
		{"1: 17|CREATE", `missing operation and "(" after "|"`, 12},
		{"1: 17|cre(1)", `operation name has 'c' at byte 6`, 6},
		{"1: 17|CRE ATE(1)", `operation name has ' ' at byte 9`, 9},
		{"1: 17|(1)", `missing operation name before "(" at byte 6`, 6},
		{"1: 17|X()", `unknown operation "X" (not in the restore.c of MooseFS 3.0.117 or 4.59.2)`, 6},
		{"1: 17|RENUMEDGES():5", `unknown operation "RENUMEDGES" (not in the restore.c of MooseFS 3.0.117 or 4.59.2)`, 6},
		{"1: 17|UNLINK(1,a", `UNLINK: ')' expected at byte 16, found end of line`, 16},
		{"1: 17|UNLINK(1,a%G1):2", `UNLINK: bad escape "%G1" at byte 16 (MooseFS writes %XX, upper-case hex)`, 16},
		{"1: 17|UNLINK(1,a%4):2", `UNLINK: bad escape "%4)" at byte 16 (MooseFS writes %XX, upper-case hex)`, 16},
		{"1: 17|UNLINK(1,a%", `UNLINK: bad escape "%" at byte 16 (MooseFS writes %XX, upper-case hex)`, 16},
		{"1: 17|UNLINK(1,a%2c):2", `UNLINK: bad escape "%2c" at byte 16 (MooseFS writes %XX, upper-case hex)`, 16},
		{"1: 17|UNLINK(1,a(b)):2", `UNLINK: ')' expected at byte 16, found '('`, 16},
		{"1: 17|UNLINK(1,a):2x", `UNLINK: end of line expected at byte 19, found 'x'`, 19},
		{"1: 17|UNLINK(1,a) :2", `UNLINK: ':' expected at byte 17, found ' '`, 17},
		{"1: 17|UNLINK(1,a)", `UNLINK: ':' expected at byte 17, found end of line`, 17},
		{"1: 17|PURGE(1):2", `PURGE: end of line expected at byte 14, found ':'`, 14},
		{"1: 17|PURGE()", `PURGE: a 32-bit number expected at byte 12, found ')'`, 12},
		{"1: 17|PURGE(4294967296)", `PURGE: a 32-bit number expected, value too big at byte 12`, 12},
		{"1: 17|SETMETAID(18446744073709551616)", `SETMETAID: a 64-bit number expected, value too big at byte 16`, 16},
		{"1: 17|SETMETAID(99999999999999999999)", `SETMETAID: a 64-bit number expected, value too big at byte 16`, 16},
		{"1: 17|SETMETAID(184467440737095516150)", `SETMETAID: a 64-bit number expected, value too big at byte 16`, 16},
		{"1: 17|ACQUIRE(1,2,3)", `ACQUIRE: ')' expected at byte 17, found ','`, 17},
		{"1: 17|SCECVERSION(256)", `SCECVERSION: a number 0-255 expected, value too big at byte 18`, 18},
		{"1: 17|FLOCK(1,2,3,X)", `FLOCK: a lock command (U, R, S, W or E) expected at byte 18, found 'X'`, 18},
		{"1: 17|CREATE(1," + strings.Repeat("a", 256) + ",1,420,18,0,0,0):2", `CREATE: name longer than 255 bytes at byte 271`, 271},
		{"1: 17|SCSET(s,1,W10,K0,A0,0,0,0,-):2", `SCSET: more than 9 labels at byte 17`, 17},
		{"1: 17|SCSET(s,1,C(1:0:0),K(0:0),A(0:0:0),T(0:0:0),1,24,0,0,-):2", `SCSET: ')' expected at byte 59, found '-'`, 59},
		{"1: 17|SESADD(#1,1,0,0x22,0,0,0,0,0x0001,0,0,0x00000000,0,info):3", `SESADD: an octal digit of the session umask expected at byte 21, found 'x'`, 21},
		{"1: 17|IDLE()\n", `newline at byte 12 (a line is given without its '\n')`, 12},
		{"1: 17|SETPATH(1,a\nb)", `newline at byte 17 (a line is given without its '\n')`, 17},
		{"1: 17|SETPATH(1,\x00)", `NUL byte at byte 16`, 16},
		{"1: 17|SETPATH(1,\tb)", `raw byte 0x09 at byte 16 (MooseFS escapes it as %09)`, 16},
		{"1: 17|SETPATH(1,é)", `raw byte 0xc3 at byte 16 (MooseFS escapes it as %C3)`, 16},
	} {
		_, err := Parse([]byte(tc.in))
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tc.in, err)
			continue
		}
		if got := err.Error(); got != tc.want || se.Offset != tc.off {
			t.Errorf("Parse(%q) = %q at offset %d, want %q at offset %d", tc.in, got, se.Offset, tc.want, tc.off)
		}
		// Errors in "VERSION: TIMESTAMP|" come from ParseVersion, the same ones; the rest
		// of the line is not its business.
		prefixErr := strings.HasPrefix(tc.want, "version ") || strings.HasPrefix(tc.want, "timestamp ") ||
			strings.HasPrefix(tc.want, `missing ": "`) || strings.HasPrefix(tc.want, `missing "|"`)
		_, _, verr := ParseVersion([]byte(tc.in))
		if prefixErr && (verr == nil || verr.Error() != tc.want) || !prefixErr && verr != nil {
			t.Errorf("ParseVersion(%q) = %v, want error %v", tc.in, verr, prefixErr)
		}
	}
}

func TestParseVersionIgnoresTheRest(t *testing.T) {
	v, ts, err := ParseVersion([]byte("42: 1795591642|not checked here(%ZZ"))
	if err != nil || v != 42 || ts != 1795591642 {
		t.Fatalf("ParseVersion = %d, %d, %v; want 42, 1795591642, nil", v, ts, err)
	}
}

func TestParseDoesNotAlias(t *testing.T) {
	b := []byte("3: 17|CREATE(1,name,1,438,18,0,0,0):4")
	l, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'Z'
	}
	if got, want := l.String(), "3: 17|CREATE(1,name,1,438,18,0,0,0):4"; got != want {
		t.Fatalf("after overwriting the input, line is %q, want %q", got, want)
	}
}
