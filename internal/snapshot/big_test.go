package snapshot

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/metafile"
)

// BenchmarkUpload and BenchmarkDownload move one big synthetic snapshot through an embedded
// server in this process and report the process's peak resident memory while doing it, which
// must stay under rssLimit whatever the size. They take a while; run them alone:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/snapshot/ [-snapshot.size N] [-snapshot.sync]
var (
	bigSize     = flag.Int64("snapshot.size", 1<<30, "bytes of the synthetic metadata file of BenchmarkUpload/Download")
	bigDir      = flag.String("snapshot.dir", "", "keep the synthetic file in this directory across runs (default: a temporary one)")
	bigSync     = flag.Bool("snapshot.sync", false, "the embedded server syncs every write, like a slow disk")
	bigLevel    = flag.String("snapshot.level", "", "zstd level: fastest, default, better or best (default: DefaultOptions)")
	bigWindow   = flag.Int("snapshot.window", 0, "zstd window in bytes (default: DefaultOptions)")
	bigInFlight = flag.Int("snapshot.inflight", 0, "chunks in flight (default: DefaultOptions)")
)

const rssLimit = 128 << 20

func bigOptions(b *testing.B) Options {
	o := DefaultOptions()
	if *bigLevel != "" {
		ok, l := zstd.EncoderLevelFromString(*bigLevel)
		if !ok {
			b.Fatalf("-snapshot.level %q: not a zstd level", *bigLevel)
		}
		o.Level = l
	}
	if *bigWindow != 0 {
		o.Window = *bigWindow
	}
	if *bigInFlight != 0 {
		o.InFlight = *bigInFlight
	}
	return o
}

// bigStore starts an embedded server with its store in dir and opens a Store on it.
func bigStore(b *testing.B, dir string) *Store {
	b.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, SyncAlways: *bigSync})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("embedded NATS did not start within 10s")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close(); srv.Shutdown(); srv.WaitForShutdown() })
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	s, err := OpenWith(context.Background(), js, "big", bigOptions(b))
	if err != nil {
		b.Fatal(err)
	}
	return withKeys(b, s)
}

// bigFile makes (or reuses, with -snapshot.dir) a synthetic metadata file of -snapshot.size
// bytes: a valid header, node-like records (ids, modes, owners, sizes and names that vary
// like a real file system's) and the end marker.
func bigFile(b *testing.B) string {
	b.Helper()
	dir := *bigDir
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("metadata-%d.mfs", *bigSize))
	if st, err := os.Stat(path); err == nil && st.Size() == *bigSize {
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	hdr := binary.BigEndian.AppendUint64([]byte(metafile.Signature), 1_000_001)
	hdr = binary.BigEndian.AppendUint64(hdr, 4242)
	w.Write(hdr)
	rng := rand.New(rand.NewPCG(1, 2))
	left := *bigSize - int64(len(hdr)) - int64(len(metafile.EOFMarker))
	rec := make([]byte, 0, 64)
	for id := uint32(2); left > 0; id++ {
		rec = binary.BigEndian.AppendUint32(rec[:0], id)
		rec = append(rec, 1, 0x1, 0xa4)
		rec = binary.BigEndian.AppendUint32(rec, 1000+uint32(rng.IntN(3)))
		rec = binary.BigEndian.AppendUint64(rec, uint64(rng.Int64N(1<<32)))
		rec = fmt.Appendf(rec, "img_%07d.jpg", id)
		rec = rec[:min(int64(len(rec)), left)]
		w.Write(rec)
		left -= int64(len(rec))
	}
	w.WriteString(metafile.EOFMarker)
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if _, err := metafile.Check(path); err != nil {
		b.Fatal(err)
	}
	return path
}

// resetPeakRSS makes VmHWM start again from the current resident size.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	debug.FreeOSMemory() // what setting up left behind is not the transfer's
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

func peakRSS(b *testing.B) int64 {
	b.Helper()
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func reportRSS(b *testing.B, before int64) {
	b.Helper()
	peak := peakRSS(b)
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(before)/(1<<20), "start-RSS-MB")
	if peak > rssLimit {
		b.Errorf("peak RSS %.1f MB; want at most %d MB", float64(peak)/(1<<20), rssLimit>>20)
	}
}

func BenchmarkUpload(b *testing.B) {
	path := bigFile(b)
	s := bigStore(b, b.TempDir())
	ctx := context.Background()
	b.SetBytes(*bigSize)
	resetPeakRSS(b)
	before := peakRSS(b)
	var snap Snapshot
	var err error
	b.ResetTimer()
	for i := range b.N {
		if snap, err = s.Upload(ctx, path, Info{Timeline: uint64(i + 1), Time: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRSS(b, before)
	b.ReportMetric(float64(snap.Size)/float64(snap.CompressedSize), "ratio")
}

func BenchmarkDownload(b *testing.B) {
	path := bigFile(b)
	s := bigStore(b, b.TempDir())
	ctx := context.Background()
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "metadata.mfs")
	b.SetBytes(*bigSize)
	resetPeakRSS(b)
	before := peakRSS(b)
	b.ResetTimer()
	for range b.N {
		if _, err := s.DownloadFile(ctx, snap.Name, out, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRSS(b, before)
}
