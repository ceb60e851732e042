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
	md := `# mfsha benchmarks

## Restore (issue 4)

| 1000 | 9.99 s | 9.99 s | x | x | 9.99 s |

## Failover (issue 5)

| inodes | keepalived (baseline) | mfsha | ratio | target | mfsmaster load floor | mfsha above the floor | target |
|---|---|---|---|---|---|---|---|
| 1000 | 7.31 s | 4.14 s | 0.57x | <= 0.35x | 1.07 s | 3.07 s | <= 1.0 s |
| 1000000 | 8.51 s | 5.59 s | 0.66x | <= 0.35x | 2.87 s | 2.73 s | <= 1.0 s |
`
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := readFailoverTable(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []failoverRow{{"kill -9 of mfsmaster", 1000, 7.31, 4.14, 1.07}, {"kill -9 of mfsmaster", 1000000, 8.51, 5.59, 2.87}}
	if len(rows) != 2 || rows[0] != want[0] || rows[1] != want[1] {
		t.Fatalf("got %+v, want %+v", rows, want)
	}
	svg := chartPath(path)
	if err := writeChartFile(svg, failoverChart(rows)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if got := bars(t, b); len(got) != 6 || got["kill -9 of mfsmaster, 1,000,000 inodes, mfsha: 5.59 s"] <= 0 {
		t.Fatalf("bars %v", got)
	}
	if err := os.WriteFile(path, []byte("## Failover\n\n| inodes | x |\n| 1000 | fast | 4 s | x | x | 1 s |\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readFailoverTable(path); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("got %v; want an error naming line 4", err)
	}
}
