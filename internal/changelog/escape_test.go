package changelog

import (
	"errors"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ raw, escaped string }{
		{"plain.txt", "plain.txt"},
		{"", ""},
		{"a,b(c)%d", "a%2Cb%28c%29%25d"},
		{"é", "%C3%A9"},
		{"日本語", "%E6%97%A5%E6%9C%AC%E8%AA%9E"},
		{"tab\there", "tab%09here"},
		{"\x7f\x00\x1f\x80\xff", "%7F%00%1F%80%FF"},
		{"sp ace:colon|pipe/slash", "sp ace:colon|pipe/slash"},
		{"nl\nname\r", "nl%0Aname%0D"},
		{"~!@#$^&*_+-=[]{};'\"<>?`", "~!@#$^&*_+-=[]{};'\"<>?`"},
	} {
		if got := Escape(tc.raw); got != tc.escaped {
			t.Errorf("Escape(%q) = %q, want %q", tc.raw, got, tc.escaped)
		}
		got, err := Unescape(tc.escaped)
		if err != nil || got != tc.raw {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tc.escaped, got, err, tc.raw)
		}
	}
}

// TestEscapeEveryByte: each byte is escaped exactly when MooseFS escapes it, and comes back.
func TestEscapeEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		esc := Escape(string([]byte{b}))
		want := c < 32 || c >= 127 || b == ',' || b == '%' || b == '(' || b == ')'
		if got := len(esc) == 3; got != want {
			t.Errorf("Escape(%#x) = %q, escaped %v, want %v", c, esc, got, want)
		}
		if back, err := Unescape(esc); err != nil || back != string([]byte{b}) {
			t.Errorf("Unescape(%q) = %q, %v; want %#x", esc, back, err, c)
		}
	}
}

func TestUnescape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a%2cb", "a,b"}, // lower-case hex is accepted
		{"%41%42", "AB"}, // so are escapes MooseFS would not write
		{"raw é", "raw é"},
	} {
		if got, err := Unescape(tc.in); err != nil || got != tc.want {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in, want string
		off      int
	}{
		{"%", `bad escape "%" at byte 0`, 0},
		{"ab%4", `bad escape "%4" at byte 2`, 2},
		{"ab%G1x", `bad escape "%G1" at byte 2`, 2},
		{"%41%1", `bad escape "%1" at byte 3`, 3},
	} {
		_, err := Unescape(tc.in)
		var se *SyntaxError
		if !errors.As(err, &se) || err.Error() != tc.want || se.Offset != tc.off {
			t.Errorf("Unescape(%q) = %v, want %q at offset %d", tc.in, err, tc.want, tc.off)
		}
	}
}
