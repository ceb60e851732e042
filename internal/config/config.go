// Package config binds mfsha's settings to command-line flags and to a configuration file in
// the MooseFS style: one `KEY = value` per line, `#` starts a comment. Every setting has both a
// flag (--data) and a key (DATA_PATH); a flag given on the command line wins over the file,
// the file wins over the default. Unknown keys and bad values are errors naming the file and
// line, so a typo never silently falls back to a default.
package config

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Set is the settings of one subcommand.
type Set struct {
	fs       *flag.FlagSet
	byKey    map[string]*setting
	settings []*setting
	config   string
}

type setting struct {
	key, flag, help string
	secret          bool
	value           flag.Value
}

// New returns an empty set for the named subcommand; every set has --config.
func New(name, usage string) *Set {
	s := &Set{fs: flag.NewFlagSet(name, flag.ContinueOnError), byKey: map[string]*setting{}}
	s.fs.StringVar(&s.config, "config", "", "configuration file (`FILE`, MooseFS style KEY = value); flags override it")
	s.fs.Usage = func() {
		out := s.fs.Output()
		fmt.Fprintf(out, "%s\n\nFlags (config file key in brackets):\n", usage)
		s.fs.VisitAll(func(f *flag.Flag) {
			key := ""
			if st, ok := s.byFlag(f.Name); ok {
				key = " [" + st.key + "]"
			}
			name, u := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  --%s %s%s\n    \t%s", f.Name, name, key, u)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	return s
}

func (s *Set) byFlag(name string) (*setting, bool) {
	for _, st := range s.settings {
		if st.flag == name {
			return st, true
		}
	}
	return nil, false
}

func (s *Set) add(v flag.Value, flagName, key, help string) *setting {
	st := &setting{key: key, flag: flagName, help: help, value: v}
	s.fs.Var(v, flagName, help)
	s.byKey[key] = st
	s.settings = append(s.settings, st)
	return st
}

// String binds a string setting.
func (s *Set) String(p *string, flagName, key, def, help string) {
	*p = def
	s.add((*stringValue)(p), flagName, key, help)
}

// Secret binds a string setting whose value is never printed.
func (s *Set) Secret(p *string, flagName, key, help string) {
	s.add((*stringValue)(p), flagName, key, help).secret = true
}

// Strings binds a comma-separated list.
func (s *Set) Strings(p *[]string, flagName, key string, def []string, help string) {
	*p = def
	s.add((*listValue)(p), flagName, key, help)
}

// Int binds an integer setting.
func (s *Set) Int(p *int, flagName, key string, def int, help string) {
	*p = def
	s.add((*intValue)(p), flagName, key, help)
}

// Duration binds a duration written like 500ms, 2s, 72h.
func (s *Set) Duration(p *time.Duration, flagName, key string, def time.Duration, help string) {
	*p = def
	s.add((*durationValue)(p), flagName, key, help)
}

// Bool binds a boolean (1/0, true/false, yes/no in the file).
func (s *Set) Bool(p *bool, flagName, key string, def bool, help string) {
	*p = def
	s.add((*boolValue)(p), flagName, key, help)
}

// FlagSet exposes the flags, for positional arguments.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// Parse parses args, then the configuration file if --config was given. It returns
// flag.ErrHelp for --help.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.config == "" {
		return nil
	}
	f, err := os.Open(s.config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return s.load(f, s.config, given)
}

func (s *Set) load(r io.Reader, name string, given map[string]bool) error {
	sc := bufio.NewScanner(r)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s line %d: want KEY = value, got %q", name, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		st, ok := s.byKey[k]
		if !ok {
			return fmt.Errorf("%s line %d: unknown key %s (known: %s)", name, n, k, strings.Join(s.Keys(), " "))
		}
		if prev, dup := seen[k]; dup {
			return fmt.Errorf("%s line %d: %s already set on line %d", name, n, k, prev)
		}
		seen[k] = n
		if given[st.flag] {
			continue
		}
		if err := st.value.Set(v); err != nil {
			shown := v
			if st.secret {
				shown = "(secret)"
			}
			return fmt.Errorf("%s line %d: %s = %s: %w", name, n, k, shown, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Keys lists the configuration file keys, sorted.
func (s *Set) Keys() []string {
	keys := make([]string, 0, len(s.byKey))
	for k := range s.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type listValue []string

func (v *listValue) Set(s string) error {
	*v = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*v = append(*v, p)
		}
	}
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (like 500ms, 2s, 72h): %q", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

type boolValue bool

func (v *boolValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		*v = true
	case "0", "false", "no", "off":
		*v = false
	default:
		return fmt.Errorf("not a boolean (1/0, yes/no): %q", s)
	}
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
