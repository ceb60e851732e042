package restorer

import (
	"bytes"
	"testing"
)

func TestIsIdle(t *testing.T) {
	for line, want := range map[string]bool{
		"3305: 1795588342|IDLE()":                       true,
		"3305: 1795588342|IDLE():0":                     false,
		"3305: 1795588342|IDLE(1)":                      false,
		"3305: 1795588342|CREATE(1,x|IDLE(),1)":         false,
		"3305: 1795588342|SESADD(#1,x,|IDLE()":          false,
		"x: 1795588342|IDLE()":                          false,
		"3305:1795588342|IDLE()":                        false,
		"|IDLE()":                                       false,
		"3305: 1795588342|CREATE(1,f,1,420,18,0,0,0):5": false,
	} {
		if got := isIdle([]byte(line)); got != want {
			t.Errorf("isIdle(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestChangeTracker feeds lines in pieces that split them anywhere: the tracker counts lines
// and remembers the last one that is not IDLE.
func TestChangeTracker(t *testing.T) {
	text := "10: 1700000000|CREATE(1,f10,1,420,18,0,0,0):10\n" +
		"11: 1700000030|IDLE()\n" +
		"12: 1700000060|IDLE()\n"
	for step := 1; step <= len(text); step++ {
		var out bytes.Buffer
		c := &changeTracker{w: &out, next: 10}
		for i := 0; i < len(text); i += step {
			c.Write([]byte(text[i:min(i+step, len(text))]))
		}
		if out.String() != text || c.next != 13 || c.lastChange != 10 {
			t.Fatalf("step %d: passed %q, next %d, last change %d; want the text, 13, 10", step, out.String(), c.next, c.lastChange)
		}
	}
	c := &changeTracker{w: &bytes.Buffer{}, next: 13}
	c.Write([]byte("13: 1700000090|IDLE()\n"))
	if c.lastChange != 0 {
		t.Errorf("IDLE only: last change %d, want 0", c.lastChange)
	}
	c.Write([]byte("14: 1700000091|UNLINK(1,averyveryveryveryveryveryveryveryverylongname|IDLE()):2\n"))
	if c.lastChange != 14 {
		t.Errorf("a long line: last change %d, want 14", c.lastChange)
	}
}
