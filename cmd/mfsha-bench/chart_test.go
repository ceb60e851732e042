package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// bars parses svg as XML and returns the bars: rect elements with a title, and their heights.
func bars(t *testing.T, svg []byte) map[string]float64 {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	out := map[string]float64{}
	var height float64
	inRect, inTitle := false, false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if x.Name.Local == "rect" {
				inRect, height = true, -1
				for _, a := range x.Attr {
					if a.Name.Local == "height" {
						height, _ = strconv.ParseFloat(a.Value, 64)
					}
				}
			}
			inTitle = inRect && x.Name.Local == "title"
		case xml.CharData:
			if inTitle {
				out[string(x)] = height
			}
		case xml.EndElement:
			if x.Name.Local == "rect" {
				inRect = false
			}
			inTitle = false
		}
	}
	return out
}

func TestChartBarsAreProportional(t *testing.T) {
	c := barChart{Title: `stall <kill -9> & "restart"`, Unit: "s", Series: []string{"keepalived", "mfsha"},
		Groups: []barGroup{{Label: "1,000 inodes", Values: []float64{8, 4}}, {Label: "1,000,000 inodes", Values: []float64{2, math.NaN()}}}}
	var b bytes.Buffer
	if err := c.writeSVG(&b); err != nil {
		t.Fatal(err)
	}
	got := bars(t, b.Bytes())
	if len(got) != 3 {
		t.Fatalf("bars %v: want 3 (the NaN value is drawn as n/a)", got)
	}
	k, m, k2 := got["1,000 inodes, keepalived: 8.00 s"], got["1,000 inodes, mfsha: 4.00 s"], got["1,000,000 inodes, keepalived: 2.00 s"]
	if k <= 0 || math.Abs(k-2*m) > 0.2 || math.Abs(k-4*k2) > 0.2 {
		t.Fatalf("heights %v, %v, %v: want them proportional to 8, 4, 2", k, m, k2)
	}
	// The axis goes to 10 s (8 rounded up): the 8 s bar fills 8/10 of the plot.
	if want := 0.8 * float64(chartHeight-marginTop-marginBottom); math.Abs(k-want) > 0.2 {
		t.Fatalf("8 s bar is %v high; want %v", k, want)
	}
	if !strings.Contains(b.String(), "stall &lt;kill -9&gt; &amp; &#34;restart&#34;") || !strings.Contains(b.String(), "n/a") {
		t.Fatalf("title not escaped or n/a missing:\n%s", b.String())
	}
}

func TestChartRefusesBadInput(t *testing.T) {
	for _, c := range []barChart{
		{Title: "no series", Groups: []barGroup{{Label: "a", Values: nil}}},
		{Title: "no groups", Series: []string{"x"}},
		{Title: "short", Series: []string{"x", "y"}, Groups: []barGroup{{Label: "a", Values: []float64{1}}}},
		{Title: "negative", Series: []string{"x"}, Groups: []barGroup{{Label: "a", Values: []float64{-1}}}},
	} {
		if err := c.writeSVG(io.Discard); err == nil || !strings.Contains(err.Error(), c.Title) {
			t.Errorf("%s: got %v; want an error naming the chart", c.Title, err)
		}
	}
}

func TestNiceMax(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {1, 1}, {1.2, 2}, {7.3, 10}, {8.51, 10}, {12, 20}, {450, 500}} {
		if got := niceMax(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("niceMax(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The chart is redrawn from a report's table (make bench writes both; -chart-only redraws).
func TestFailoverTableToChart(t *testing.T) {
	rows := []failoverRow{
		{"kill -9 of mfsmaster", 1000, writerFelt{longest: 7.31, blocked: 7.52, outages: 2, files: 4120}, writerFelt{longest: 3.1, blocked: 3.25, outages: 1, files: 5311}, 1.07, 2.1},
		{"kill -9 of mfsmaster", 1000000, writerFelt{longest: 8.51, blocked: 8.51, outages: 1, files: 3001}, writerFelt{longest: 5.59, blocked: 6.02, outages: 3, files: 2999}, 2.87, 4.1},
	}
	md := "# mfsha benchmarks\n\n## Restore (issue 4)\n\n| 1000 | 9.99 s | 9.99 s | x | x | 9.99 s |\n\n## Failover (issues 5 and 11)\n\nprose\n\n" +
		failoverHeader + rows[0].markdown() + rows[1].markdown() + "\n![chart](BENCHMARKS-failover.svg)\n\nA note | with a bar, not a row.\n"
	if !strings.Contains(md, "| 1000 | 7.31 s | 7.52 s | 2 | 3.10 s | 3.25 s | 1 | 0.43x | 1.07 s | 2.10 s | 4120, 5311 |\n") {
		t.Fatalf("row written as:\n%s", md)
	}
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readFailoverTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != rows[0] || got[1] != rows[1] {
		t.Fatalf("got %+v, want %+v", got, rows)
	}
	svg := chartPath(path)
	if err := writeChartFile(svg, failoverChart(got)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	// Two bars per size, keepalived's and mfsha's blocked time, proportional to it.
	bs := bars(t, b)
	k, m := bs["kill -9 of mfsmaster, 1,000,000 inodes, keepalived (baseline): 8.51 s"], bs["kill -9 of mfsmaster, 1,000,000 inodes, mfsha: 6.02 s"]
	if len(bs) != 4 || k <= 0 || math.Abs(k/m-8.51/6.02) > 0.01 {
		t.Fatalf("bars %v: want 4, the 1,000,000-inode ones in the ratio of 8.51 to 6.02 s", bs)
	}
	if !strings.Contains(string(b), "Writer blocked in the 30 s after") {
		t.Fatalf("chart title:\n%s", b)
	}
}

// A keepalived run with no outage has no ratio: written "-", never Inf or NaN.
func TestFailoverRowWithoutBaselineOutage(t *testing.T) {
	r := failoverRow{inodes: 1000, keepalived: writerFelt{longest: 0.1, files: 10}, mfsha: writerFelt{longest: 0.1, files: 10}, floor: 1}
	if got := r.markdown(); !strings.Contains(got, "| 0 | - |") {
		t.Fatalf("row %q: want the ratio written as -", got)
	}
}

// A table of another layout (the single-write measure before issue 11) is refused, naming the
// line, rather than drawn from the wrong columns; so is a cell that is not a number.
func TestFailoverTableRefusesOtherLayouts(t *testing.T) {
	for _, tc := range []struct{ name, row, want string }{
		{"old layout", "| 1000 | 7.31 s | 4.14 s | 0.57x | <= 0.35x | 1.07 s | 3.07 s | <= 1.0 s |", "8 columns; want 11"},
		{"not seconds", "| 1000 | fast | 7.52 s | 2 | 3.10 s | 3.25 s | 1 | 0.43x | 1.07 s | 2.10 s | 4120, 5311 |", "column 2: want seconds"},
		{"not a count", "| 1000 | 7.31 s | 7.52 s | two | 3.10 s | 3.25 s | 1 | 0.43x | 1.07 s | 2.10 s | 4120, 5311 |", "column 4: want a count"},
		{"one count of files", "| 1000 | 7.31 s | 7.52 s | 2 | 3.10 s | 3.25 s | 1 | 0.43x | 1.07 s | 2.10 s | 4120 |", "column 11"},
	} {
		path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
		if err := os.WriteFile(path, []byte("## Failover\n\n"+failoverHeader+tc.row+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readFailoverTable(path)
		if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error naming line 5 and %q", tc.name, err, tc.want)
		}
	}
}
