package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// `mfsha nats` with METRICS_LISTEN answers /health once its JetStream server is ready, and
// 503 on the endpoints of roles it does not have.
func TestNatsServesHealth(t *testing.T) {
	web := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&natsCommand{}).Run(ctx, []string{"--state", t.TempDir(), "--nats-listen", freePort(t), "--metrics", web, "--log-level", "error"})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mfsha nats: %v", err)
		}
	})
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get("http://" + web + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, body
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/health")
		loops, _ := body["loops_age_seconds"].(map[string]any)
		if code == http.StatusOK && loops["nats server"] != nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("mfsha nats stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health: %d %v; want 200 with the server's loop", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []string{"/master", "/standby", "/status"} {
		if code, _ := get(p); code != http.StatusServiceUnavailable {
			t.Errorf("%s on a NATS node: %d; want 503", p, code)
		}
	}
	if code, _ := get("/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: %d", code)
	}
}
