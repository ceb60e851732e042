package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfsha/mfsha/internal/liveness"
)

// get asks the server at addr and decodes the JSON body.
func get(t *testing.T, addr, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	} else {
		body = map[string]any{"text": string(b)}
	}
	return resp.StatusCode, body
}

func serve(t *testing.T, cfg Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.Addr = "127.0.0.1:0"
	addr, err := Serve(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestHealthFollowsTheLoops(t *testing.T) {
	live := liveness.New()
	addr := serve(t, Config{Live: live, Stale: 200 * time.Millisecond})
	if code, body := get(t, addr, "/health"); code != http.StatusOK || body["ok"] != true || body["mfsha"] == "" {
		t.Fatalf("no loop yet: %d %v; want 200", code, body)
	}
	live.Tick("ship")
	if code, _ := get(t, addr, "/health"); code != http.StatusOK {
		t.Fatalf("a loop just ticked: %d; want 200", code)
	}
	// A loop that stops turning makes the daemon unhealthy; poll, never assert on timing.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, addr, "/health")
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(body["reason"].(string), "ship") {
				t.Fatalf("reason %q does not name the stale loop", body["reason"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a loop not ticked for 10 s: /health still %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	live.Done("ship")
	if code, _ := get(t, addr, "/health"); code != http.StatusOK {
		t.Fatalf("the stale loop ended: %d; want 200", code)
	}
}

func TestRolesAndStatus(t *testing.T) {
	master := Verdict{Reason: "standing by"}
	var gotLag uint64
	addr := serve(t, Config{Live: liveness.New(), Stale: time.Minute,
		Master: func() Verdict { return master },
		Standby: func(maxLag uint64) Verdict {
			gotLag = maxLag
			return Verdict{OK: maxLag >= 10, Reason: "10 lines behind"}
		},
		MaxLag: 100,
		Status: func(ctx context.Context) (any, error) { return map[string]string{"cluster": "mfs"}, nil },
	})
	if code, body := get(t, addr, "/master"); code != http.StatusServiceUnavailable || body["reason"] != "standing by" {
		t.Fatalf("/master: %d %v; want 503 standing by", code, body)
	}
	master = Verdict{OK: true, Reason: "serving"}
	if code, _ := get(t, addr, "/master"); code != http.StatusOK {
		t.Fatalf("/master: %d; want 200", code)
	}
	if code, body := get(t, addr, "/standby"); code != http.StatusOK || gotLag != 100 || body["max_lag_lines"] != float64(100) {
		t.Fatalf("/standby: %d %v (limit %d); want 200 with the configured limit 100", code, body, gotLag)
	}
	if code, _ := get(t, addr, "/standby?lag=5"); code != http.StatusServiceUnavailable || gotLag != 5 {
		t.Fatalf("/standby?lag=5: %d (limit %d); want 503 with limit 5", code, gotLag)
	}
	if code, body := get(t, addr, "/standby?lag=x"); code != http.StatusBadRequest || !strings.Contains(body["text"].(string), `lag="x"`) {
		t.Fatalf("/standby?lag=x: %d %v; want 400 naming the parameter", code, body)
	}
	if code, body := get(t, addr, "/status"); code != http.StatusOK || body["cluster"] != "mfs" {
		t.Fatalf("/status: %d %v", code, body)
	}
}

func TestNoRoleAnswers503(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mfsha_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	addr := serve(t, Config{Gatherer: reg, Live: liveness.New(), Stale: time.Minute,
		Status: func(ctx context.Context) (any, error) { return nil, errors.New("nats: no servers available") }})
	for _, p := range []string{"/master", "/standby"} {
		if code, body := get(t, addr, p); code != http.StatusServiceUnavailable || body["ok"] != false {
			t.Fatalf("%s without the role: %d %v; want 503", p, code, body)
		}
	}
	if code, body := get(t, addr, "/status"); code != http.StatusServiceUnavailable || !strings.Contains(body["reason"].(string), "no servers") {
		t.Fatalf("/status with NATS away: %d %v; want 503 with the error", code, body)
	}
	if code, body := get(t, addr, "/metrics"); code != http.StatusOK || !strings.Contains(body["text"].(string), "mfsha_test_total 1") {
		t.Fatalf("/metrics: %d %v", code, body)
	}
}

func TestServeNamesTheSetting(t *testing.T) {
	_, err := Serve(context.Background(), Config{Addr: "127.0.0.1:bad", Stale: time.Minute}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "METRICS_LISTEN") {
		t.Fatalf("got %v; want an error naming METRICS_LISTEN", err)
	}
	if _, err := Serve(context.Background(), Config{Addr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "HEALTH_STALE") {
		t.Fatalf("got %v; want an error naming HEALTH_STALE", err)
	}
}
