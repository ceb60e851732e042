package main

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The alerting rules and the dashboard in deploy/monitoring name only metrics that a running
// node exports: the names are collected from the registry a failover node builds (a superset
// of a plain ship's and a plain standby's) and from every query.
const (
	rulesFile     = "../../deploy/monitoring/mfsha-rules.yml"
	dashboardFile = "../../deploy/monitoring/mfsha-dashboard.json"
)

// synthetic are series Prometheus makes itself for every target, not exported by a node.
var synthetic = map[string]bool{"up": true}

// exported returns the metric names a failover node registers, with the series names of
// histograms (_bucket, _sum, _count) and summaries.
func exported(t *testing.T) map[string]bool {
	reg := prometheus.NewRegistry()
	newNodeMetrics(reg)
	registerRuntime(reg)
	ch := make(chan *prometheus.Desc, 256)
	go func() { reg.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
	}
	// Series of histograms and summaries: known only from a gathering.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetType().String() == "HISTOGRAM" || mf.GetType().String() == "SUMMARY" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	if !names["mfsha_ship_gap"] || !names["mfsha_standby_fold_seconds_bucket"] || !names["mfsha_failover_is_master"] || !names["process_resident_memory_bytes"] {
		t.Fatalf("the node's registry lacks known metrics: %v", names)
	}
	return names
}

var (
	quoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers = regexp.MustCompile(`\{[^}]*\}`)
	ranges   = regexp.MustCompile(`\[[^\]]*\]`)
	grouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	ident    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames returns the metric names in a PromQL expression: identifiers that are not
// functions (followed by "("), keywords, label names (inside {} or a grouping) or literals.
func metricNames(expr string) []string {
	e := quoted.ReplaceAllString(expr, `""`)
	e = matchers.ReplaceAllString(e, " ")
	e = ranges.ReplaceAllString(e, " ")
	e = grouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range ident.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || keywords[strings.ToLower(name)] {
			continue
		}
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // part of a number such as 1e3
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNamesOfAQuery(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, instance) (rate(mfsha_standby_fold_seconds_bucket{instance=~"$instance"}[5m]))) > 1e3 and on(instance) up{job="mfsha"} == 0`)
	want := []string{"mfsha_standby_fold_seconds_bucket", "up"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// ruleExprs reads the expr: lines of the rules file (each expression is on one line).
func ruleExprs(t *testing.T) map[string]string {
	f, err := os.Open(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	alert := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if a, ok := strings.CutPrefix(line, "- alert:"); ok {
			alert = strings.TrimSpace(a)
		}
		if e, ok := strings.CutPrefix(line, "expr:"); ok {
			if alert == "" || strings.HasSuffix(e, "|") || strings.HasSuffix(e, ">") {
				t.Fatalf("%s: expr %q: want one line under an alert", rulesFile, e)
			}
			out[alert] = strings.TrimSpace(e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dashboardExprs reads the queries of the dashboard's panels and variables.
func dashboardExprs(t *testing.T) map[string]string {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
		}
		for i, tg := range p.Targets {
			out[p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if e, ok := strings.CutPrefix(v.Definition, "label_values("); ok {
			out["variable "+v.Name] = strings.TrimSuffix(e[:strings.LastIndexByte(e, ',')], " ")
		}
	}
	return out
}

func TestRulesAndDashboardNameExportedMetrics(t *testing.T) {
	have := exported(t)
	used := map[string]bool{}
	check := func(file string, exprs map[string]string) {
		if len(exprs) == 0 {
			t.Fatalf("%s: no queries found", file)
		}
		for where, e := range exprs {
			names := metricNames(e)
			if len(names) == 0 {
				t.Errorf("%s: %s: %q names no metric", file, where, e)
			}
			for _, n := range names {
				used[n] = true
				if !have[n] && !synthetic[n] {
					t.Errorf("%s: %s: metric %s is not exported by mfsha (query %q)", file, where, n, e)
				}
			}
		}
	}
	check(rulesFile, ruleExprs(t))
	check(dashboardFile, dashboardExprs(t))
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metrics used: %s", len(names), strings.Join(names, " "))
}
