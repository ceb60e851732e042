package changelog

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func realLines(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/real-changelog.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if len(out) < 20 {
		t.Fatalf("testdata/real-changelog.txt has %d lines, want the captured ones", len(out))
	}
	return out
}

func TestRealLinesRoundTrip(t *testing.T) {
	for _, raw := range realLines(t) {
		l, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := l.String(); got != string(raw) {
			t.Errorf("round trip:\n got %s\nwant %s", got, raw)
		}
	}
}

func TestParseFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Line
	}{
		{`5: 1795591642|CREATE(1,f%2C1%28%25%29%C3%A9%09tab.txt,1,438,18,0,0,0):4`,
			Line{Version: 5, Time: 1795591642, Op: "CREATE", Args: []string{"1", "f,1(%)é\ttab.txt", "1", "438", "18", "0", "0", "0"}, HasResult: true, Result: "4"}},
		{`8: 1795591642|CREATE(1,with space:colon|pipe.txt,1,438,18,0,0,0):5`,
			Line{Version: 8, Time: 1795591642, Op: "CREATE", Args: []string{"1", "with space:colon|pipe.txt", "1", "438", "18", "0", "0", "0"}, HasResult: true, Result: "5"}},
		{`14: 1795591764|MOVE(1,a.txt,2,b.txt):6`,
			Line{Version: 14, Time: 1795591764, Op: "MOVE", Args: []string{"1", "a.txt", "2", "b.txt"}, HasResult: true, Result: "6"}},
		{`1: 1795591635|SETMETAID(7712007351827270746)`,
			Line{Version: 1, Time: 1795591635, Op: "SETMETAID", Args: []string{"7712007351827270746"}}},
		{`9: 17|IDLE()`, Line{Version: 9, Time: 17, Op: "IDLE"}},
	} {
		got, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		got.rawArgs = ""
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%s)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
		// A line built by hand escapes its arguments as MooseFS does.
		if s := tc.want.String(); s != tc.in {
			t.Errorf("Format(%+v) = %s, want %s", tc.want, s, tc.in)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain.txt":           "plain.txt",
		"a,b(c)%d":            "a%2Cb%28c%29%25d",
		"é\t\x7f\x00":         "%C3%A9%09%7F%00",
		"sp ace:colon|pipe/x": "sp ace:colon|pipe/x",
		"nl\nname":            "nl%0Aname",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if back, err := Unescape(want); err != nil || back != in {
			t.Errorf("Unescape(%q) = %q, %v; want %q", want, back, err, in)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                         `version "" is not a number`,
		"12a: 1|X()":               `missing ": " after version 12`,
		"x: 1|X()":                 `version "x: 1|X()" is not a number`,
		"1: |X()":                  `timestamp "|X()" is not a number`,
		"1: 17X()":                 `missing "|" after timestamp`,
		"1: 17|CREATE(1,a":         "unterminated argument list",
		"1: 17|CREATE":             `missing operation name or "("`,
		"1: 17|cre(1)":             `operation name has 'c'`,
		"1: 17|CREATE(1,a%G1,2)":   `bad escape "%G1" at byte 15`,
		"1: 17|CREATE(1,a%4":       "unterminated",
		"1: 17|CREATE(1)x":         `unexpected "x" after the argument list`,
		"99999999999999999999: 1|": "overflows",
		"01: 1|X()":                "leading zero",
		"1: 017|X()":               "leading zero",
	} {
		_, err := Parse([]byte(in))
		if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an ErrSyntax containing %q", in, err, want)
		}
	}
}

func TestScannerNamesFileAndLine(t *testing.T) {
	in := "1: 1|SETMETAID(5)\n2: 1|ACQUIRE(1,2)\n3: 1|BAD(%ZZ)\n"
	sc := NewScanner(strings.NewReader(in), "changelog.0.mfs")
	n := 0
	for sc.Scan() {
		n++
	}
	var le *LineError
	if n != 2 || !errors.As(sc.Err(), &le) || le.File != "changelog.0.mfs" || le.Line != 3 ||
		!strings.Contains(sc.Err().Error(), "changelog.0.mfs line 3: ") {
		t.Fatalf("read %d lines, err %v; want 2 and an error at changelog.0.mfs line 3", n, sc.Err())
	}
}

func TestScannerPartialLine(t *testing.T) {
	sc := NewScanner(strings.NewReader("1: 1|SETMETAID(5)\n2: 1|ACQU"), "changelog.0.mfs")
	var got []string
	for sc.Scan() {
		got = append(got, string(sc.Raw()))
	}
	if len(got) != 1 || !errors.Is(sc.Err(), ErrPartialLine) || !strings.Contains(sc.Err().Error(), "line 2") {
		t.Fatalf("got %q, %v; want one line and a partial line 2", got, sc.Err())
	}
	clean := NewScanner(strings.NewReader("1: 1|SETMETAID(5)\n"), "x")
	for clean.Scan() {
	}
	if clean.Err() != nil {
		t.Fatalf("clean end: %v", clean.Err())
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, l := range realLines(f) {
		f.Add(l)
	}
	f.Add([]byte("1: 17|CREATE(1,a%2c,1):2"))
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := Parse(in)
		if err != nil {
			if _, _, verr := ParseVersion(in); verr == nil && bytes.IndexByte(in, '|') < 0 {
				t.Fatalf("ParseVersion accepted %q without '|'", in)
			}
			return
		}
		if v, ts, err := ParseVersion(in); err != nil || v != l.Version || ts != l.Time {
			t.Fatalf("ParseVersion(%q) = %d, %d, %v; Parse says %d, %d", in, v, ts, err, l.Version, l.Time)
		}
		out := l.AppendFormat(nil)
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip:\n got %q\nwant %q", out, in)
		}
		l2, err := Parse(out)
		if err != nil || !reflect.DeepEqual(l, l2) {
			t.Fatalf("reparse of %q: %+v, %v; want %+v", out, l2, err, l)
		}
		// Arguments built by hand escape canonically and parse back to the same values.
		hand := Line{Version: l.Version, Time: l.Time, Op: l.Op, Args: l.Args, HasResult: l.HasResult, Result: l.Result}
		l3, err := Parse(hand.AppendFormat(nil))
		if len(l.Args) > 0 && (err != nil || !reflect.DeepEqual(l3.Args, l.Args)) {
			t.Fatalf("hand-built %q: %+v, %v", hand.AppendFormat(nil), l3.Args, err)
		}
	})
}

func BenchmarkParseVersion(b *testing.B) {
	line := []byte("123456789: 1795591642|CREATE(1,img_0001234.jpg,1,420,18,1000,1000,0):1234")
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		if _, _, err := ParseVersion(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	line := []byte("123456789: 1795591642|CREATE(1,f%2C1%28%25%29%C3%A9%09tab.txt,1,420,18,1000,1000,0):1234")
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
