package failover

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestProbeLiveMaster: a real mfsmaster answers with its metadata version.
func TestProbeLiveMaster(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	_, done := startForeign(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := Probe(ctx, nil, env.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Errorf("version %d, want >= 1", v)
	}
	select {
	case <-done:
		t.Error("the master exited after the probe")
	default:
	}
}

// TestProbeClosedPort: nothing listens: an error at once, not ErrBadAnswer.
func TestProbeClosedPort(t *testing.T) {
	t.Parallel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := Probe(ctx, nil, addr)
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrBadAnswer) {
		t.Errorf("Probe of a closed port: %v, want connection refused", err)
	}
}

// TestProbeSilentListener: a port that accepts and never answers (a hung master) is an error
// once ctx ends.
func TestProbeSilentListener(t *testing.T) {
	t.Parallel()
	addr := serve(t, func(c net.Conn) { <-t.Context().Done() })
	const limit = 300 * time.Millisecond
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	_, err := Probe(ctx, nil, addr)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Probe of a silent port: %v, want context.DeadlineExceeded", err)
	}
	if took < limit || took > limit+time.Second {
		t.Errorf("Probe of a silent port returned after %v, want about %v", took, limit)
	}
}

// TestProbeAnswers: what counts as a master's answer, and what errors name.
func TestProbeAnswers(t *testing.T) {
	t.Parallel()
	info := infoAnswer(0x0102030405060708)
	tests := []struct {
		name    string
		answer  []byte
		want    uint64
		wantErr string // with ErrBadAnswer
	}{
		{name: "MATOCL_INFO", answer: info, want: 0x0102030405060708},
		{name: "NOP first", answer: append(packet(0, nil), info...), want: 0x0102030405060708},
		{name: "longer answer", answer: packet(matoclInfo, make([]byte, 200)), want: 0},
		{name: "wrong type", answer: packet(0x1234, []byte("garbage")), wantErr: "answer of type 4660 (length 7), want MATOCL_INFO (511)"},
		{name: "http", answer: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), wantErr: "answer of type 1213486160"},
		{name: "short", answer: packet(matoclInfo, make([]byte, 10)), wantErr: "MATOCL_INFO of length 10, want 129 to 65536"},
		{name: "huge", answer: header(matoclInfo, 1<<30), wantErr: "MATOCL_INFO of length 1073741824"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, func(c net.Conn) {
				var req [8]byte
				if _, err := c.Read(req[:]); err == nil && binary.BigEndian.Uint32(req[:4]) == cltomaInfo {
					c.Write(tt.answer)
				}
				<-t.Context().Done()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			v, err := Probe(ctx, nil, addr)
			if tt.wantErr == "" {
				if err != nil || v != tt.want {
					t.Errorf("Probe: %#x, %v; want %#x", v, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadAnswer) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Probe: %v; want ErrBadAnswer with %q", err, tt.wantErr)
			}
		})
	}
}

// TestChecker: down only after `failures` consecutive failed probes, reset by a success; a
// probe cut short by the caller's ctx does not count. The failures are a hung master (a port
// that never answers) and a refused dial; the successes come from a real mfsmaster.
func TestChecker(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	startForeign(t, env)
	hung := serve(t, func(c net.Conn) { <-t.Context().Done() })
	var mode atomic.Int32 // 0 live, 1 hung, 2 refused
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch mode.Load() {
		case 1:
			return d.DialContext(ctx, network, hung)
		case 2:
			return nil, syscall.ECONNREFUSED
		}
		return d.DialContext(ctx, network, addr)
	}
	const timeout = 100 * time.Millisecond
	c := NewChecker(dial, env.clientAddr, timeout, 3)
	ctx := context.Background()
	check := func(step string, m int32, wantDown, wantErr bool) uint64 {
		t.Helper()
		mode.Store(m)
		start := time.Now()
		down, v, err := c.Check(ctx)
		if took := time.Since(start); took > timeout+time.Second {
			t.Errorf("%s: Check took %v with timeout %v", step, took, timeout)
		}
		if down != wantDown || (err != nil) != wantErr {
			t.Fatalf("%s: Check() = down %v, err %v; want down %v, error %v", step, down, err, wantDown, wantErr)
		}
		return v
	}
	v := check("live", 0, false, false)
	if v < 1 {
		t.Fatalf("version %d, want >= 1", v)
	}
	if got := check("hung 1", 1, false, true); got != v {
		t.Errorf("version after a failure: %d, want the last seen, %d", got, v)
	}
	check("refused 2", 2, false, true)
	check("hung 3", 1, true, true)
	check("hung 4", 1, true, true)
	check("live again", 0, false, false)
	check("refused 1", 2, false, true)
	check("hung 2", 1, false, true)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	mode.Store(1)
	if down, _, err := c.Check(canceled); down || err == nil {
		t.Errorf("Check with a canceled ctx: down %v, err %v; want false and an error", down, err)
	}
	check("hung 3, after the canceled one", 1, true, true)
}

// serve listens on 127.0.0.1 and runs handle for each connection until the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func header(typ, length uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, typ), length)
}

func packet(typ uint32, payload []byte) []byte {
	return append(header(typ, uint32(len(payload))), payload...)
}

// infoAnswer is a MATOCL_INFO as MooseFS 3.0.117 sends it, 149 bytes, with version.
func infoAnswer(version uint64) []byte {
	p := make([]byte, 149)
	copy(p, []byte{0, 3, 0, 0xEA})
	binary.BigEndian.PutUint64(p[121:], version)
	return packet(matoclInfo, p)
}
