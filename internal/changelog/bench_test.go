package changelog

import (
	"bytes"
	"testing"
)

const (
	plainLine   = "123456789: 1795591642|CREATE(1,img_0001234.jpg,1,420,18,1000,1000,0):1234"
	escapedLine = "123456789: 1795591642|CREATE(1,f%2C1%28%25%29%C3%A9%09tab.txt,1,420,18,1000,1000,0):1234"
)

// TestParseVersionDoesNotAllocate: the shipper calls ParseVersion on every line.
func TestParseVersionDoesNotAllocate(t *testing.T) {
	line := []byte(plainLine)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := ParseVersion(line); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseVersion allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkParseVersion(b *testing.B) {
	line := []byte(plainLine)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseVersion(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, line string }{{"plain", plainLine}, {"escaped", escapedLine}} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFormat(b *testing.B) {
	l, err := Parse([]byte(escapedLine))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(escapedLine)))
	b.ReportAllocs()
	for b.Loop() {
		buf = l.AppendFormat(buf[:0])
	}
}

// BenchmarkScanner reads the real capture over and over: whole lines, parsed.
func BenchmarkScanner(b *testing.B) {
	one := bytes.Join(realLines(b), []byte{'\n'})
	one = append(one, '\n')
	in := bytes.Repeat(one, 100)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		sc := NewScanner(bytes.NewReader(in), "bench")
		for sc.Scan() {
		}
		if err := sc.Err(); err != nil {
			b.Fatal(err)
		}
	}
}
