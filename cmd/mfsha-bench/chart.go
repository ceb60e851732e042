package main

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// barChart is a grouped bar chart: one group per measured case, one bar per series in each,
// drawn by writeSVG with no dependency (BENCHMARKS.md embeds the file).
type barChart struct {
	Title  string
	Unit   string   // of the values, e.g. "s"
	Series []string // bar names, in order; the legend
	Groups []barGroup
}

// barGroup is one case: its label and one value per series (NaN: not measured).
type barGroup struct {
	Label  string
	Values []float64
}

// Colours of the series, in order (colour-blind safe: Okabe-Ito).
var seriesColours = []string{"#999999", "#0072B2", "#E69F00", "#009E73", "#CC79A7"}

// Layout, in pixels.
const (
	chartWidth   = 720
	chartHeight  = 360
	marginLeft   = 64
	marginRight  = 16
	marginTop    = 48
	marginBottom = 72
	barGap       = 4
)

// niceMax rounds v up to 1, 2 or 5 times a power of ten, for the axis; at least 1.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// writeSVG draws c. It fails on a group whose values do not match the series.
func (c barChart) writeSVG(w io.Writer) error {
	if len(c.Series) == 0 || len(c.Series) > len(seriesColours) {
		return fmt.Errorf("chart %q: %d series; want 1 to %d", c.Title, len(c.Series), len(seriesColours))
	}
	if len(c.Groups) == 0 {
		return fmt.Errorf("chart %q: no groups", c.Title)
	}
	max := 0.0
	for _, g := range c.Groups {
		if len(g.Values) != len(c.Series) {
			return fmt.Errorf("chart %q: group %q has %d values for %d series", c.Title, g.Label, len(g.Values), len(c.Series))
		}
		for _, v := range g.Values {
			if v < 0 || math.IsInf(v, 0) {
				return fmt.Errorf("chart %q: group %q: value %v", c.Title, g.Label, v)
			}
			if !math.IsNaN(v) {
				max = math.Max(max, v)
			}
		}
	}
	top := niceMax(max)
	plotW := float64(chartWidth - marginLeft - marginRight)
	plotH := float64(chartHeight - marginTop - marginBottom)
	y := func(v float64) float64 { return marginTop + plotH - v/top*plotH }
	e := html.EscapeString

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginLeft, e(c.Title))
	// Axis and grid: five steps.
	for i := 0; i <= 5; i++ {
		v := top * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", marginLeft, chartWidth-marginRight, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s %s</text>`+"\n", marginLeft-6, y(v)+4, strconv.FormatFloat(v, 'g', 4, 64), e(c.Unit))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", marginLeft, chartWidth-marginRight, y(0), y(0))
	groupW := plotW / float64(len(c.Groups))
	barW := (groupW*0.8 - barGap*float64(len(c.Series)-1)) / float64(len(c.Series))
	for gi, g := range c.Groups {
		x0 := marginLeft + groupW*float64(gi) + groupW*0.1
		for si, v := range g.Values {
			x := x0 + float64(si)*(barW+barGap)
			if math.IsNaN(v) {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">n/a</text>`+"\n", x+barW/2, y(0)-4)
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s %s</title></rect>`+"\n",
				x, y(v), barW, y(0)-y(v), seriesColours[si], e(g.Label), e(c.Series[si]), strconv.FormatFloat(v, 'f', 2, 64), e(c.Unit))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x+barW/2, y(v)-4, strconv.FormatFloat(v, 'f', 2, 64))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", marginLeft+groupW*(float64(gi)+0.5), y(0)+18, e(g.Label))
	}
	// Legend, under the axis labels.
	lx := float64(marginLeft)
	for si, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, chartHeight-28, seriesColours[si])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", lx+16, chartHeight-18, e(s))
		lx += 24 + 7*float64(len(s))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// failoverChart is the chart of the failover section: per fault and metadata size, the time
// the continuous writer was blocked in the window after the fault, with keepalived and with
// mfsha.
func failoverChart(rows []failoverRow) barChart {
	c := barChart{Title: fmt.Sprintf("Writer blocked in the %.0f s after the master's fault (lower is better)", failoverWindow.Seconds()), Unit: "s",
		Series: []string{"keepalived (baseline)", "mfsha"}}
	for _, r := range rows {
		c.Groups = append(c.Groups, barGroup{Label: fmt.Sprintf("%s, %s inodes", r.fault, thousands(r.inodes)),
			Values: []float64{r.keepalived.blocked, r.mfsha.blocked}})
	}
	return c
}

// writerFelt is how the continuous writer felt one setup's failover, in the window after the
// fault: its longest gap and blocked time (seconds), its outages, and the files it got
// acknowledged over its whole run (all of them read back).
type writerFelt struct {
	longest, blocked float64
	outages          int
	files            int
}

// killFault is the fault the failover section measures (the table has no column for it).
const killFault = "kill -9 of mfsmaster"

// failoverRow is one line of the failover table.
type failoverRow struct {
	fault             string
	inodes            int
	keepalived, mfsha writerFelt
	floor             float64 // mfsmaster's own start on that metadata, seconds
	// clientFloor is issue 11's floor: the client's first reconnection attempt at or after
	// mfsha's new master listens (clientFloor in failover.go), seconds after the kill.
	clientFloor float64
}

// failoverHeader heads the failover table; markdown writes its rows, readFailoverTable reads them.
const failoverHeader = "| inodes | keepalived (baseline): longest gap | blocked | outages | mfsha: longest gap | blocked | outages | blocked, mfsha/keepalived | mfsmaster load floor | client floor (mfsha) | acknowledged files, all read back (keepalived, mfsha) |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|\n"

// failoverColumns is how many cells a row of the table has.
const failoverColumns = 11

// ratio is mfsha's blocked time over keepalived's; NaN when keepalived's is zero.
func (r failoverRow) ratio() float64 {
	if r.keepalived.blocked == 0 {
		return math.NaN()
	}
	return r.mfsha.blocked / r.keepalived.blocked
}

// ratioText is ratio as the table writes it: "-" when there is none.
func (r failoverRow) ratioText() string {
	if q := r.ratio(); !math.IsNaN(q) {
		return fmt.Sprintf("%.2fx", q)
	}
	return "-"
}

// markdown is r as a line of the table under failoverHeader.
func (r failoverRow) markdown() string {
	ratio := r.ratioText()
	k, m := r.keepalived, r.mfsha
	return fmt.Sprintf("| %d | %.2f s | %.2f s | %d | %.2f s | %.2f s | %d | %s | %.2f s | %.2f s | %d, %d |\n",
		r.inodes, k.longest, k.blocked, k.outages, m.longest, m.blocked, m.outages, ratio, r.floor, r.clientFloor, k.files, m.files)
}

// parseFailoverRow reads the cells of a line written by markdown (the ratio is derived, not read).
func parseFailoverRow(cells []string) (failoverRow, error) {
	r := failoverRow{fault: killFault}
	if len(cells) != failoverColumns {
		return r, fmt.Errorf("%d columns; want %d (%s)", len(cells), failoverColumns, strings.TrimSpace(strings.SplitN(failoverHeader, "\n", 2)[0]))
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	var errs []error
	sec := func(i int) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(cells[i], " s"), 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("column %d: want seconds: %w", i+1, err))
		}
		return v
	}
	count := func(s string, column int) int {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("column %d: want a count: %w", column+1, err))
		}
		return v
	}
	r.inodes = count(cells[0], 0)
	r.keepalived = writerFelt{longest: sec(1), blocked: sec(2), outages: count(cells[3], 3)}
	r.mfsha = writerFelt{longest: sec(4), blocked: sec(5), outages: count(cells[6], 6)}
	r.floor = sec(8)
	r.clientFloor = sec(9)
	files := strings.Split(cells[10], ",")
	if len(files) != 2 {
		errs = append(errs, fmt.Errorf("column 11: %q: want two counts, keepalived's and mfsha's", cells[10]))
	} else {
		r.keepalived.files, r.mfsha.files = count(files[0], 10), count(files[1], 10)
	}
	return r, errors.Join(errs...)
}

// readFailoverTable reads the rows of the failover table of a BENCHMARKS.md written by this
// program (under failoverHeader), so that the chart can be redrawn without measuring again
// (-chart-only). A row of another layout (an older measure) is an error naming its line.
func readFailoverTable(path string) ([]failoverRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []failoverRow
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, "## Failover")
			continue
		}
		if !in || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if _, err := strconv.Atoi(strings.TrimSpace(cells[0])); err != nil {
			continue // the header
		}
		r, err := parseFailoverRow(cells)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no failover table", path)
	}
	return rows, nil
}

// writeChartFile writes c to path atomically enough for a generated file (temp and rename).
func writeChartFile(path string, c barChart) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := c.writeSVG(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// thousands formats n with commas: 1000000 -> "1,000,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
