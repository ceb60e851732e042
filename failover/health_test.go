package failover

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/mfsinfo"
	"github.com/mfsha/mfsha/internal/moosefs"
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
		{name: "4.59.2", answer: packet(matoclInfo, infoPayload(205, 125, 3305)), want: 3305},
		// Answers it cannot read are errors, never version 0 (a promotion would abort on a
		// live master "serving version 0").
		{name: "unknown length", answer: packet(matoclInfo, make([]byte, 200)), wantErr: "unknown layout: 200 bytes from MooseFS 0.0.0"},
		{name: "4.x length, 3.x layout", answer: packet(matoclInfo, append(infoPayload(149, 121, 7), make([]byte, 56)...)), wantErr: "205 bytes from MooseFS 3.0.117 without the marker before the metadata version at byte 125"},
		{name: "version 0", answer: packet(matoclInfo, infoPayload(205, 125, 0)), wantErr: "MooseFS 4.59.2 reports metadata version 0"},
		{name: "wrong type", answer: packet(0x1234, []byte("garbage")), wantErr: "answer to packet 510 has type 4660 (length 7), want 511"},
		{name: "http", answer: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), wantErr: "has type 1213486160"},
		{name: "short", answer: packet(matoclInfo, make([]byte, 10)), wantErr: "unknown layout: 10 bytes"},
		{name: "huge", answer: header(matoclInfo, 1<<30), wantErr: "type 511 of length 1073741824, want at most 65536"},
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
func infoAnswer(version uint64) []byte { return packet(matoclInfo, infoPayload(149, 121, version)) }

// infoPayload is a MATOCL_INFO payload of n bytes with the metadata version at offset at,
// after the marker MooseFS puts before it, from MooseFS 3.0.117 (n 149) or 4.59.2.
func infoPayload(n, at int, version uint64) []byte {
	p := make([]byte, n)
	copy(p, []byte{0, 3, 0, 0xEA})
	if n == 205 {
		copy(p, []byte{0, 4, 59, 4})
	}
	copy(p[at-12:], []byte{0xFF, 0xFF, 0xFF, 0xFF})
	binary.BigEndian.PutUint64(p[at:], version)
	return p
}

// TestProbeEveryRelease: a real mfsmaster of each tested release (whatever MFSHA_MOOSEFS
// selects: the layouts differ, 149 bytes from 3.0.117, 205 from 4.59.2) answers with its
// MooseFS version and the metadata version its changelog says: the line after its last one.
func TestProbeEveryRelease(t *testing.T) {
	for _, d := range moosefs.Installed {
		t.Run(d.Version.String(), func(t *testing.T) {
			t.Parallel()
			if err := d.Check(context.Background(), "mfsmaster"); err != nil {
				t.Fatalf("%v: `make deps` installs both releases", err)
			}
			env := newMasterEnv(t)
			startBin(t, env, d.Path("mfsmaster"))
			var info mfsinfo.Info
			for try := 0; ; try++ {
				before := lastVersion(t, filepath.Join(env.data, "changelog.0.mfs"))
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				var err error
				info, err = ProbeInfo(ctx, nil, env.clientAddr)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if after := lastVersion(t, filepath.Join(env.data, "changelog.0.mfs")); before == after && before > 0 {
					if info.MetaVersion != before+1 {
						t.Fatalf("probe says version %d, the changelog ends at %d", info.MetaVersion, before)
					}
					break
				}
				if try == 50 {
					t.Fatalf("the changelog never settled (or stayed empty) around a probe")
				}
				time.Sleep(200 * time.Millisecond)
			}
			if info.MooseFS != d.Version {
				t.Errorf("MooseFS version %s, want %s", info.MooseFS, d.Version)
			}
		})
	}
}

// lastVersion is the version of the last whole line of a changelog file, 0 if it has none.
func lastVersion(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	if len(b) == 0 {
		return 0
	}
	last := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1 : len(b)-1]
	v, _, err := changelog.ParseVersion(last)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
