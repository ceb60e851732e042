package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newSet() (*Set, *string, *int, *time.Duration, *[]string) {
	var (
		data string
		n    int
		d    time.Duration
		urls []string
	)
	s := New("t", "usage")
	s.String(&data, "data", "DATA_PATH", "/var/lib/mfs", "data")
	s.Int(&n, "n", "COUNT", 3, "count")
	s.Duration(&d, "interval", "INTERVAL", time.Second, "interval")
	s.Strings(&urls, "nats", "NATS_URL", nil, "urls")
	return s, &data, &n, &d, &urls
}

func writeCfg(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mfsha.cfg")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileAndFlagPrecedence(t *testing.T) {
	p := writeCfg(t, "# comment\nDATA_PATH = /srv/mfs  # trailing\nCOUNT=7\nINTERVAL = 250ms\nNATS_URL = nats://a:4222, nats://b:4222\n")
	s, data, n, d, urls := newSet()
	if err := s.Parse([]string{"--config", p, "--n", "9"}); err != nil {
		t.Fatal(err)
	}
	if *data != "/srv/mfs" || *n != 9 || *d != 250*time.Millisecond || len(*urls) != 2 || (*urls)[1] != "nats://b:4222" {
		t.Fatalf("got data=%q n=%d d=%v urls=%q", *data, *n, *d, *urls)
	}
}

func TestDefaultsWithoutFile(t *testing.T) {
	s, data, n, _, _ := newSet()
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if *data != "/var/lib/mfs" || *n != 3 {
		t.Fatalf("got %q %d", *data, *n)
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"DATA_PATH = x\nBOGUS = 1\n", "line 2: unknown key BOGUS"},
		{"COUNT = many\n", "line 1: COUNT = many: not an integer"},
		{"INTERVAL = 5\n", "line 1: INTERVAL = 5: not a duration"},
		{"\n\njust words\n", "line 3: want KEY = value"},
		{"COUNT = 1\nCOUNT = 2\n", "line 2: COUNT already set on line 1"},
	} {
		p := writeCfg(t, tc.text)
		s, _, _, _, _ := newSet()
		err := s.Parse([]string{"--config", p})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("config %q: got error %v, want one naming %s and %q", tc.text, err, p, tc.want)
		}
	}
}
