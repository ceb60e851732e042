// Package httpapi serves a daemon's HTTP interface on its metrics address, as Patroni's REST
// API does for PostgreSQL: Prometheus metrics at /metrics, and four endpoints whose status
// code is the answer, for load balancers, fencing scripts and monitoring checks:
//
//	/health   200 while the daemon's loops turn (each ticked within the stale limit), else 503
//	/master   200 only on the node whose mfsmaster serves under a valid lease, else 503
//	/standby  200 when this node stands by with metadata materialized within the allowed lag
//	          (STANDBY_MAX_LAG lines, or ?lag=N), else 503
//	/status   200 with what `mfsha status --json` prints, 503 when NATS cannot tell
//
// Every answer is a JSON object with at least "ok", "reason" and "mfsha" (the version). GET
// and HEAD are served; the answers are never cached.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/internal/liveness"
)

// Verdict is one endpoint's answer: OK gives 200, else 503.
type Verdict struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// Config says what the endpoints ask. Nil functions mean the daemon has no such role: their
// endpoint answers 503 saying so.
type Config struct {
	Addr     string              // listen address (METRICS_LISTEN); "" serves nothing
	Gatherer prometheus.Gatherer // served at /metrics
	Live     *liveness.Monitor   // the daemon's loops, for /health
	Stale    time.Duration       // a loop not ticked for longer makes /health 503
	// Master answers /master; it must not wait on the network (a load balancer asks often).
	Master func() Verdict
	// Standby answers /standby with the allowed lag in lines: MaxLag, or the request's ?lag=.
	Standby func(maxLag uint64) Verdict
	MaxLag  uint64
	// Status returns the cluster's status (the body of /status); ctx bounds it.
	Status func(ctx context.Context) (any, error)
	// StatusTimeout bounds one /status request (default 10 s).
	StatusTimeout time.Duration
}

// Validate checks the settings, naming them.
func (c Config) Validate() error {
	if c.Addr != "" && c.Stale <= 0 {
		return fmt.Errorf("HEALTH_STALE = %v: want more than 0", c.Stale)
	}
	return nil
}

// Handler returns the endpoints of cfg.
func Handler(cfg Config) http.Handler {
	if cfg.StatusTimeout <= 0 {
		cfg.StatusTimeout = 10 * time.Second
	}
	mux := http.NewServeMux()
	if cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		loops := cfg.Live.Loops()
		v := Verdict{OK: true, Reason: fmt.Sprintf("%d loops turn", len(loops))}
		if stale := cfg.Live.Stale(cfg.Stale); len(stale) > 0 {
			names := make([]string, len(stale))
			for i, l := range stale {
				names[i] = fmt.Sprintf("%s (%v)", l.Name, l.Age.Round(time.Millisecond))
			}
			v = Verdict{Reason: fmt.Sprintf("loops not turned within %v: %s", cfg.Stale, strings.Join(names, ", "))}
		}
		ages := map[string]float64{}
		for _, l := range loops {
			ages[l.Name] = l.Age.Seconds()
		}
		reply(w, v, map[string]any{"loops_age_seconds": ages})
	})
	mux.HandleFunc("GET /master", func(w http.ResponseWriter, r *http.Request) {
		v := Verdict{Reason: "not a failover node (no VIP): no lease says who is master"}
		if cfg.Master != nil {
			v = cfg.Master()
		}
		reply(w, v, nil)
	})
	mux.HandleFunc("GET /standby", func(w http.ResponseWriter, r *http.Request) {
		limit := cfg.MaxLag
		if s := r.URL.Query().Get("lag"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				http.Error(w, fmt.Sprintf("lag=%q: want a number of lines", s), http.StatusBadRequest)
				return
			}
			limit = n
		}
		v := Verdict{Reason: "this daemon keeps no standby"}
		if cfg.Standby != nil {
			v = cfg.Standby(limit)
		}
		reply(w, v, map[string]any{"max_lag_lines": limit})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Status == nil {
			reply(w, Verdict{Reason: "this daemon has no status to give"}, nil)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), cfg.StatusTimeout)
		defer cancel()
		st, err := cfg.Status(ctx)
		if err != nil {
			reply(w, Verdict{Reason: "status: " + err.Error()}, nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(st)
	})
	return mux
}

// reply writes v (200 when OK, else 503) with extra fields as a JSON object.
func reply(w http.ResponseWriter, v Verdict, extra map[string]any) {
	body := map[string]any{"ok": v.OK, "reason": v.Reason, "mfsha": buildinfo.Get().Version}
	for k, x := range extra {
		body[k] = x
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	code := http.StatusOK
	if !v.OK {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// Serve listens on cfg.Addr and serves Handler(cfg) until ctx ends; it returns the address it
// listens on ("" when cfg.Addr is empty). The listening error is returned at once, naming
// METRICS_LISTEN; later serving errors are logged.
func Serve(ctx context.Context, cfg Config, log *slog.Logger) (string, error) {
	if cfg.Addr == "" {
		return "", nil
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("METRICS_LISTEN %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server", "addr", ln.Addr().String(), "err", err)
		}
	}()
	addr := ln.Addr().String()
	log.Info("HTTP", "metrics", "http://"+addr+"/metrics", "endpoints", "/health /master /standby /status")
	return addr, nil
}
