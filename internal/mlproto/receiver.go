// Package mlproto receives a MooseFS master's changelog the way mfsmetalogger does: it
// connects to the master's metalogger port (9419), registers as a metalogger and is handed
// every changelog line the moment the master writes it, with no file and no one-second
// buffer in between. The protocol, read in mfsmetalogger/masterconn.c and
// mfsmaster/matomlserv.c of MooseFS 3.0.117 and 4.59.2 (they agree on all of it; 4.x adds
// MATOAN_MASTER_ACK and ANTOAN_FORCE_TIMEOUT), is in packet.go.
package mlproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"time"
)

// Line is one changelog entry as the master sent it.
type Line struct {
	Version uint64
	// Text is the whole line, "VERSION: TS|OP(...)[:RESULT]\n": byte for byte the line
	// mfsmaster appends to its changelog.0.mfs (bgsaver.c and changelog.c both print
	// "%"PRIu64": %s\n") and mfsmetalogger to its changelog_ml.0.mfs.
	Text []byte
}

func newLine(version uint64, text []byte) Line {
	b := make([]byte, 0, 20+2+len(text)+1)
	b = strconv.AppendUint(b, version, 10)
	b = append(b, ':', ' ')
	b = append(b, text...)
	b = append(b, '\n')
	return Line{Version: version, Text: b}
}

// Version2Int is MooseFS's VERSION2INT: the u32 a component announces as its version.
func Version2Int(major, mid, minor int) uint32 {
	return uint32(major)<<16 | uint32(mid)<<8 | uint32(minor)
}

// Config configures a Receiver. Zero values mean the defaults given.
type Config struct {
	// Addr is host:port of the master's metalogger port (MATOML_LISTEN_PORT, 9419). Required.
	Addr string
	// Next is the version of the first line wanted. The master sends the lines from there
	// on if it still holds them in memory (CHANGELOG_PRESERVE_SECONDS, 1800 by default);
	// otherwise the first line is a later one and Run returns a *GapError. 0 means "whatever
	// the master writes next".
	Next uint64
	// Timeout is the connection timeout announced to the master (whole seconds, at least
	// 10 s, mfsmetalogger's MASTER_TIMEOUT): the master drops us after that long without a
	// packet, and we drop a master that sent nothing for that long (a master sends a NOP
	// every third of it). A 4.x master with MATOML_FORCE_TIMEOUT imposes its own. Default 10 s.
	Timeout time.Duration
	// Announce is the MooseFS version we register with (Version2Int). The master shows it
	// in mfscli's metalogger list; 4.x acknowledges the registration (MATOAN_MASTER_ACK) to
	// versions it deems able to read the acknowledgement. Default 3.0.117, which 3.0.117 and
	// 4.59.2 masters both accept.
	Announce uint32
	// RetryDelay separates two connection attempts after a failure or a lost connection.
	// Default 200 ms: a failover moves the master in seconds.
	RetryDelay time.Duration
	// DialTimeout bounds one connection attempt. Default 2 s.
	DialTimeout time.Duration
	// Dial dials the master; nil means a net.Dialer. net.Dialer.DialContext fits, and so does
	// a lab's dialer into a network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log gets connection events; nil means slog.Default().
	Log *slog.Logger
}

// Defaults of Config.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultRetryDelay  = 200 * time.Millisecond
	DefaultDialTimeout = 2 * time.Second
	minTimeout         = 10 * time.Second
)

// DefaultAnnounce is Config.Announce's default: MooseFS 3.0.117.
var DefaultAnnounce = Version2Int(3, 0, 117)

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Announce == 0 {
		c.Announce = DefaultAnnounce
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Validate checks the configuration, naming the field at fault.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("mlproto config: Addr is required (host:port of the master's metalogger port, 9419)")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("mlproto config: Addr %q: %w", c.Addr, err)
	}
	if c.Timeout < minTimeout || c.Timeout > math.MaxUint16*time.Second || c.Timeout%time.Second != 0 {
		return fmt.Errorf("mlproto config: Timeout %s: want whole seconds, 10s to %ds", c.Timeout, math.MaxUint16)
	}
	if c.RetryDelay < 0 || c.DialTimeout < 0 {
		return fmt.Errorf("mlproto config: RetryDelay %s, DialTimeout %s: want positive durations", c.RetryDelay, c.DialTimeout)
	}
	return nil
}

// Status is a snapshot of a Receiver's state.
type Status struct {
	// Connected is true from a registration on to the loss of that connection.
	Connected bool
	// Since is when Connected last changed (zero before the first attempt).
	Since time.Time
	// Next is the version of the next line to deliver: every line below it was delivered
	// (0 until the first line, if Config.Next was 0).
	Next uint64
	// MasterVersion is the master's MooseFS version from its acknowledgement (4.x only; 0 for
	// a 3.x master, which sends none).
	MasterVersion uint32
	// LastErr is why the last connection ended or the last attempt failed.
	LastErr error
	// Connects counts successful registrations.
	Connects int
}

// Receiver receives a master's changelog lines. Run delivers them; Status may be called
// concurrently with Run from any goroutine.
type Receiver struct {
	cfg Config

	mu     sync.Mutex
	status Status
}

// New returns a Receiver for cfg, or an error naming the field at fault.
func New(cfg Config) (*Receiver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Receiver{cfg: cfg, status: Status{Next: cfg.Next}}, nil
}

// Status returns the receiver's current state.
func (r *Receiver) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Run connects, registers and calls deliver with each line, in version order, from its own
// goroutine, as soon as the line's packet is read: nothing is buffered beyond the packet being
// read. A line is delivered once: Next moves past it when deliver returns nil, and a
// reconnection asks the master for the lines from Next on. Run must not be called again while
// it runs.
//
// A lost connection or a failed attempt is logged and retried every RetryDelay, for ever: the
// master may be restarting or failing over. Run returns ctx.Err() when ctx ends; deliver's
// error, wrapped; a *GapError when a line is not the one expected next; or an error wrapping
// ErrProtocol, naming the packet, when the master sent one it should not have. Every line
// before the returned error was delivered.
func (r *Receiver) Run(ctx context.Context, deliver func(context.Context, Line) error) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(r.cfg.RetryDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		err := r.session(ctx, deliver)
		r.setDisconnected(err)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrProtocol), errors.Is(err, ErrGap), errors.Is(err, errDeliver):
			return err
		}
		r.cfg.Log.Warn("metalogger connection to master lost; reconnecting", "master", r.cfg.Addr,
			"next", r.Status().Next, "retry_in", r.cfg.RetryDelay, "err", err)
	}
}

// errDeliver marks deliver's errors, which end Run.
var errDeliver = errors.New("deliver")

// session runs one connection: dial, register, then read packets until an error. Only one
// goroutine writes to the connection at a time: the registration is written before the
// keepalive goroutine starts.
func (r *Receiver) session(ctx context.Context, deliver func(context.Context, Line) error) error {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	conn, err := r.cfg.Dial(dctx, "tcp", r.cfg.Addr)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to master %s: %w", r.cfg.Addr, err)
	}
	defer conn.Close()
	// The connection dies with ctx: a read blocked on it returns at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	next := r.Status().Next
	timeout := r.cfg.Timeout
	conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(registerPacket(r.cfg.Announce, uint16(timeout/time.Second), next)); err != nil {
		return fmt.Errorf("register with master %s: %w", r.cfg.Addr, err)
	}
	r.setConnected()
	r.cfg.Log.Info("registered with master as a metalogger", "master", r.cfg.Addr, "next", next)

	// keepalive writes a NOP every third of the timeout, as mfsmetalogger does; it ends with
	// the session (done) or on a failed write, which the reader then sees as well.
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	interval := make(chan time.Duration, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := timeout / 3
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case every = <-interval:
				t.Reset(every)
			case <-t.C:
				conn.SetWriteDeadline(time.Now().Add(3 * every))
				if _, err := conn.Write(nopPacket); err != nil {
					conn.Close()
					return
				}
			}
		}
	}()

	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		conn.SetReadDeadline(time.Now().Add(timeout))
		typ, payload, err := readPacket(br)
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				return fmt.Errorf("master %s: %w", r.cfg.Addr, err)
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("master %s closed the connection: %w", r.cfg.Addr, err)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				return fmt.Errorf("master %s sent nothing for %s: %w", r.cfg.Addr, timeout, err)
			}
			return fmt.Errorf("read from master %s: %w", r.cfg.Addr, err)
		}
		m, err := decode(typ, payload)
		if err != nil {
			return fmt.Errorf("master %s: %w", r.cfg.Addr, err)
		}
		switch m.kind {
		case kindLine:
			if next != 0 && m.line.Version != next {
				return &GapError{Master: r.cfg.Addr, Want: next, Got: m.line.Version}
			}
			if err := deliver(ctx, m.line); err != nil {
				return fmt.Errorf("%w line %d: %w", errDeliver, m.line.Version, err)
			}
			next = m.line.Version + 1
			r.setNext(next)
		case kindRotate:
			r.cfg.Log.Debug("master rotated its changelog", "master", r.cfg.Addr, "next", next)
		case kindAck:
			r.setMasterVersion(m.master)
			switch m.ackType {
			case 0: // the lines from the version asked follow
			case 1:
				// From now on only: the master lacks (or, after a restart, has no memory of)
				// older lines. Nothing is lost unless the next line says so.
				r.cfg.Log.Info("master sends the changelog from now on", "master", r.cfg.Addr, "next", next)
			default:
				return fmt.Errorf("master %s: %s: acknowledgement type %d refuses the registration: %w",
					r.cfg.Addr, packetName(typ), m.ackType, ErrProtocol)
			}
		case kindTimeout:
			t := time.Duration(m.timeout) * time.Second
			if t < minTimeout {
				t = minTimeout // as masterconn_force_timeout does
			}
			timeout = t
			select { // only this goroutine sends: after the drain there is room
			case <-interval:
			default:
			}
			interval <- t / 3
		case kindNOP:
		}
	}
}

func (r *Receiver) setConnected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Connected = true
	r.status.Since = time.Now()
	r.status.Connects++
}

func (r *Receiver) setDisconnected(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Connected || r.status.Since.IsZero() {
		r.status.Since = time.Now()
	}
	r.status.Connected = false
	r.status.LastErr = err
}

func (r *Receiver) setNext(v uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Next = v
}

func (r *Receiver) setMasterVersion(v uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.MasterVersion = v
}
