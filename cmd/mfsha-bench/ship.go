package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/shipper"
)

// env is an embedded JetStream server with file storage, as `mfsha ship` runs by default.
type env struct {
	dir  string
	nc   *nats.Conn
	js   jetstream.JetStream
	stop func()
	// The cluster key, made in dir/keys as mfsha init would: shippers sign, readers verify,
	// as in production (the benchmarks include the cost).
	signer   *sign.Signer
	verifier *sign.Verifier
	keyPath  string // the signer's key file, for a shipper run as its own process
	pubPath  string // the verifier's key file, for a standby run as its own process
}

func newEnv(dir string) (*env, error) {
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return nil, err
	}
	// A second env on the same dir (a child process reading what another stored) keeps the key.
	privPath, pubPath := filepath.Join(keys, sign.PrivateFile), filepath.Join(keys, sign.PublicFile)
	if _, err := os.Stat(privPath); err != nil {
		if privPath, pubPath, err = sign.WriteKeyPair(keys); err != nil {
			return nil, err
		}
	}
	signer, err := sign.LoadSigner(privPath)
	if err != nil {
		return nil, err
	}
	verifier, err := sign.LoadVerifier(pubPath)
	if err != nil {
		return nil, err
	}
	srv, err := natsconn.StartEmbedded(natsconn.EmbeddedOptions{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:-1"})
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return nil, err
	}
	return &env{dir: dir, nc: nc, js: js, stop: func() { nc.Close(); srv.Shutdown(); srv.WaitForShutdown() },
		signer: signer, verifier: verifier, keyPath: privPath, pubPath: pubPath}, nil
}

type throughput struct {
	lines           int
	rawBytes        float64
	sentBytes       float64
	shipSeconds     float64
	ceilingSeconds  float64 // publish the precompressed batches
	compressSeconds float64 // compress and publish the same batches: no tailing, parsing or checks
	batches         int
}

func (t throughput) shipRate() float64     { return float64(t.lines) / t.shipSeconds }
func (t throughput) ceilingRate() float64  { return float64(t.lines) / t.ceilingSeconds }
func (t throughput) compressRate() float64 { return float64(t.lines) / t.compressSeconds }

// benchThroughput ships an n-line changelog from start to the last acknowledgement, then
// publishes the same batches, precompressed, as fast as JetStream takes them.
func benchThroughput(ctx context.Context, dir string, n int, log *slog.Logger) (throughput, error) {
	res := throughput{lines: n}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return res, err
	}
	logFile := filepath.Join(data, "changelog.0.mfs")
	if err := writeWorkload(logFile, n); err != nil {
		return res, err
	}
	e, err := newEnv(dir)
	if err != nil {
		return res, err
	}
	defer e.stop()

	cfg := shipper.DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Signer = data, shipper.KindMaster, "bench", e.signer
	done := make(chan struct{})
	cfg.OnAck = func(b stream.BatchInfo) {
		if b.LastVersion == uint64(n) {
			close(done)
		}
	}
	sh, err := shipper.New(cfg, e.js, log, nil)
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- sh.Run(sctx) }()
	select {
	case <-done:
	case err := <-errc:
		cancel()
		return res, fmt.Errorf("shipper stopped: %v", err)
	case <-time.After(5 * time.Minute):
		cancel()
		return res, fmt.Errorf("shipper did not finish in 5 minutes")
	}
	res.shipSeconds = time.Since(start).Seconds()
	cancel()
	<-errc
	raw, sent := sh.Totals()
	res.rawBytes, res.sentBytes = float64(raw), float64(sent)

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.Level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return res, err
	}
	batches, err := prebuild(logFile, cfg.MaxBatchBytes)
	if err != nil {
		return res, err
	}
	res.batches = len(batches)
	// Baseline 1: compress and publish the same batches, as a shipper with nothing to tail would.
	start = time.Now()
	if err := publishAll(ctx, e.js, "COMPRESS", batches, func(m *nats.Msg) { m.Data = enc.EncodeAll(m.Data, nil) }); err != nil {
		return res, err
	}
	res.compressSeconds = time.Since(start).Seconds()
	// Baseline 2: publish the same batches already compressed: JetStream's own ceiling.
	start = time.Now()
	if err := publishAll(ctx, e.js, "CEILING", batches, nil); err != nil {
		return res, err
	}
	res.ceilingSeconds = time.Since(start).Seconds()
	return res, nil
}

// publishAll publishes batches to a new stream, transforming each in place first when prep is
// set, and waits for every acknowledgement.
func publishAll(ctx context.Context, js jetstream.JetStream, name string, batches []*nats.Msg, prep func(*nats.Msg)) error {
	subj := strings.ToLower(name)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage, MaxMsgSize: 8 << 20}); err != nil {
		return err
	}
	for _, b := range batches {
		if prep != nil {
			prep(b)
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Header: b.Header, Data: b.Data}); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("publish to %s did not complete", name)
	}
}

func writeWorkload(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := newWorkload(1).write(bw, n); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// prebuild cuts the file into the shipper's batches (whole lines up to maxBytes) carrying the
// same headers; Data holds the uncompressed lines.
func prebuild(path string, maxBytes int) ([]*nats.Msg, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	var out []*nats.Msg
	var v uint64 = 1
	for len(raw) > 0 {
		cut := len(raw)
		if cut > maxBytes {
			cut = bytes.LastIndexByte(raw[:maxBytes], '\n') + 1
		}
		chunk := raw[:cut]
		raw = raw[cut:]
		lines := bytes.Count(chunk, []byte{'\n'})
		info := stream.BatchInfo{Timeline: 1, FirstVersion: v, LastVersion: v + uint64(lines) - 1, Lines: lines,
			Sum: crc32.Checksum(chunk, table), FirstTime: 1, LastTime: 1}
		v += uint64(lines)
		out = append(out, &nats.Msg{Header: info.Header(), Data: chunk})
	}
	return out, nil
}

type latency struct {
	rate     int
	seconds  float64
	samples  int
	p50, p99 time.Duration
	max      time.Duration
}

// benchLatency appends lines at a steady rate (in 1 ms steps, as a busy master does) and
// measures, per line, the time from its append to the stream's acknowledgement.
func benchLatency(ctx context.Context, dir string, rate int, d, batchDelay time.Duration, log *slog.Logger) (latency, error) {
	res := latency{rate: rate, seconds: d.Seconds()}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return res, err
	}
	f, err := os.OpenFile(filepath.Join(data, "changelog.0.mfs"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return res, err
	}
	defer f.Close()
	w := newWorkload(1)
	if err := w.write(f, 1); err != nil { // the shipper needs a first line to start from
		return res, err
	}
	e, err := newEnv(dir)
	if err != nil {
		return res, err
	}
	defer e.stop()

	total := int(float64(rate) * d.Seconds())
	appended := make([]time.Time, total+2)
	appended[1] = time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	cfg := shipper.DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Signer = data, shipper.KindMaster, "latency", e.signer
	cfg.BatchDelay = batchDelay
	done := make(chan struct{})
	cfg.OnAck = func(b stream.BatchInfo) {
		now := time.Now()
		mu.Lock()
		for v := b.FirstVersion; v <= b.LastVersion && v < uint64(len(appended)); v++ {
			if v > 1 {
				lat = append(lat, now.Sub(appended[v]))
			}
		}
		mu.Unlock()
		if b.LastVersion >= uint64(total+1) {
			select {
			case <-done:
			default:
				close(done)
			}
		}
	}
	sh, err := shipper.New(cfg, e.js, log, nil)
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- sh.Run(sctx) }()

	perTick := rate / 1000
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var buf []byte
	for written := 0; written < total; {
		<-tick.C
		buf = buf[:0]
		k := min(perTick, total-written)
		for i := 0; i < k; i++ {
			buf = append(w.line(buf), '\n')
		}
		now := time.Now()
		mu.Lock()
		for i := 0; i < k; i++ {
			appended[2+written+i] = now
		}
		mu.Unlock()
		if _, err := f.Write(buf); err != nil {
			return res, err
		}
		written += k
	}
	select {
	case <-done:
	case err := <-errc:
		return res, fmt.Errorf("shipper stopped: %v", err)
	case <-time.After(time.Minute):
		return res, fmt.Errorf("not every line was acknowledged")
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.samples = len(lat)
	res.p50, res.p99, res.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return res, nil
}
