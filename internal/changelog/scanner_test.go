package changelog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// scanAll returns the raw lines a Scanner yields, and its Err.
func scanAll(sc *Scanner) ([]string, error) {
	var got []string
	for sc.Scan() {
		got = append(got, string(sc.Raw()))
	}
	return got, sc.Err()
}

func TestScannerRealFile(t *testing.T) {
	b, err := os.ReadFile("testdata/real-changelog.txt")
	if err != nil {
		t.Fatal(err)
	}
	sc := NewScanner(bytes.NewReader(b), "real-changelog.txt")
	n := 0
	for sc.Scan() {
		n++
		if got, want := sc.LineNumber(), n; got != want {
			t.Fatalf("LineNumber = %d, want %d", got, want)
		}
		if got, want := sc.Line().Version, uint64(n); got != want {
			t.Fatalf("line %d: version %d, want %d", n, got, want)
		}
		if got, want := sc.Line().String(), string(sc.Raw()); got != want {
			t.Fatalf("line %d: Line %q, Raw %q", n, got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := n, bytes.Count(b, []byte{'\n'}); got != want {
		t.Errorf("read %d lines, want %d", got, want)
	}
	if got, want := sc.Offset(), int64(len(b)); got != want {
		t.Errorf("Offset = %d, want %d", got, want)
	}
}

func TestScannerNamesFileAndLine(t *testing.T) {
	var in strings.Builder
	for v := 1; v <= 41; v++ {
		fmt.Fprintf(&in, "%d: 1795591642|ACQUIRE(1,%d)\n", v, v)
	}
	good := in.String()
	for _, tc := range []struct{ bad, want string }{
		{"x: 1|IDLE()\n", `changelog.0.mfs line 42: version "x" is not a number`},
		{"42: 1|PURGE(%ZZ)\n", `changelog.0.mfs line 42: PURGE: a 32-bit number expected at byte 12, found '%'`},
		{"42: 1|BAD(1)\n", `changelog.0.mfs line 42: unknown operation "BAD" (not in the restore.c of MooseFS 3.0.117 or 4.59.2)`},
		{"42: 1|UNLINK(1,a%ZZ):3\n", `changelog.0.mfs line 42: UNLINK: bad escape "%ZZ" at byte 16 (MooseFS writes %XX, upper-case hex)`},
		{"42: 1|UNLINK(1,a\x00b):3\n", `changelog.0.mfs line 42: NUL byte at byte 16`},
		{"42: 1|CREATE(1,a\n", `changelog.0.mfs line 42: CREATE: ',' expected at byte 16, found end of line`},
		{"42 1|IDLE()\n", `changelog.0.mfs line 42: missing ": " after version 42`},
	} {
		sc := NewScanner(strings.NewReader(good+tc.bad+"43: 1|IDLE()\n"), "changelog.0.mfs")
		got, err := scanAll(sc)
		if len(got) != 41 || err == nil || err.Error() != tc.want {
			t.Errorf("read %d lines, err %v; want 41 and %q", len(got), err, tc.want)
			continue
		}
		var le *LineError
		if !errors.As(err, &le) || le.File != "changelog.0.mfs" || le.Line != 42 || !errors.Is(err, ErrSyntax) {
			t.Errorf("error %#v: want a *LineError of changelog.0.mfs line 42 wrapping ErrSyntax", err)
		}
		if got, want := string(sc.Raw()), strings.TrimSuffix(tc.bad, "\n"); got != want {
			t.Errorf("Raw after the error = %q, want the bad line %q", got, want)
		}
		if sc.Scan() || sc.Err() != err {
			t.Errorf("Scan after a parse error went on (err %v)", sc.Err())
		}
	}
}

// TestScannerPartialLine: a last line without '\n' is not returned, is reported as
// ErrPartialLine, and is returned whole once the rest arrives.
func TestScannerPartialLine(t *testing.T) {
	var buf bytes.Buffer // Read returns io.EOF when empty; later writes are read
	buf.WriteString("1: 1|SETMETAID(5)\n2: 1|ACQU")
	sc := NewScanner(&buf, "changelog.0.mfs")
	got, err := scanAll(sc)
	if want := []string{"1: 1|SETMETAID(5)"}; !equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	var le *LineError
	if !errors.Is(err, ErrPartialLine) || !errors.As(err, &le) || le.Line != 2 ||
		err.Error() != "changelog.0.mfs line 2: partial line (no newline yet)" {
		t.Fatalf("err %v, want a partial line 2 of changelog.0.mfs", err)
	}
	if got, want := sc.Offset(), int64(len("1: 1|SETMETAID(5)\n")); got != want {
		t.Errorf("Offset = %d, want %d (the partial line not counted)", got, want)
	}
	if sc.Raw() != nil {
		t.Errorf("Raw after a partial line = %q, want nil", sc.Raw())
	}

	buf.WriteString("IRE(1,2)\n3: 1|SESSION()")
	got, err = scanAll(sc)
	if want := []string{"2: 1|ACQUIRE(1,2)"}; !equal(got, want) || !errors.Is(err, ErrPartialLine) {
		t.Fatalf("after the rest: lines %q, err %v; want %q and a partial line 3", got, err, want)
	}
	buf.WriteString(":7\n")
	got, err = scanAll(sc)
	if want := []string{"3: 1|SESSION():7"}; !equal(got, want) || err != nil {
		t.Fatalf("lines %q, err %v; want %q and a clean end", got, err, want)
	}
	if got, want := sc.LineNumber(), 3; got != want {
		t.Errorf("LineNumber = %d, want %d", got, want)
	}
	// After a clean end, lines appended later are read too.
	buf.WriteString("4: 2|IDLE()\n")
	got, err = scanAll(sc)
	if want := []string{"4: 2|IDLE()"}; !equal(got, want) || err != nil {
		t.Fatalf("lines %q, err %v; want %q", got, err, want)
	}
}

func TestScannerEmptyInput(t *testing.T) {
	got, err := scanAll(NewScanner(strings.NewReader(""), "empty"))
	if len(got) != 0 || err != nil {
		t.Fatalf("lines %q, err %v; want none and no error", got, err)
	}
}

func TestScannerLineTooLong(t *testing.T) {
	head := "1: 1|SETPATH(1,"
	fits := head + strings.Repeat("a", MaxLineBytes-len(head)-1) + ")"
	got, err := scanAll(NewScanner(strings.NewReader(fits+"\n"), "f"))
	if len(got) != 1 || len(got[0]) != MaxLineBytes || err != nil {
		t.Fatalf("a line of MaxLineBytes: %d lines, err %v; want it read", len(got), err)
	}
	long := head + strings.Repeat("a", MaxLineBytes) + ")\n2: 1|IDLE()\n"
	got, err = scanAll(NewScanner(strings.NewReader(long), "f"))
	var le *LineError
	if len(got) != 0 || !errors.Is(err, ErrLineTooLong) || !errors.As(err, &le) || le.Line != 1 {
		t.Fatalf("%d lines, err %v; want ErrLineTooLong at line 1", len(got), err)
	}
}

func TestScannerReadError(t *testing.T) {
	boom := errors.New("boom")
	sc := NewScanner(iotest.DataErrReader(iotest.ErrReader(boom)), "changelog.3.mfs")
	got, err := scanAll(sc)
	if len(got) != 0 || !errors.Is(err, boom) || !strings.Contains(err.Error(), "changelog.3.mfs") {
		t.Fatalf("lines %q, err %v; want boom naming changelog.3.mfs", got, err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
