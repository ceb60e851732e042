package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mfsha/mfsha/internal/metafile"
)

// snapshotSection measures the peak resident memory of a process (embedded JetStream server
// included) uploading a 1 GB snapshot, against the same for a 64 MB one: memory must not grow
// with the snapshot. Each upload runs in a child process of its own so that the peaks are
// separate.
func snapshotSection(ctx context.Context, w *strings.Builder, dir string) error {
	fmt.Fprintf(w, "\n## Snapshot upload memory (issue 2)\n\n| snapshot | peak RSS of the whole process (VmHWM) | upload time | stored | target |\n|---|---|---|---|---|\n")
	var small int64
	for _, size := range []int64{64 << 20, 1 << 30} {
		fmt.Printf("snapshot upload of %d MB in a child process...\n", size>>20)
		out, err := exec.CommandContext(ctx, os.Args[0], "-snapshot-child", strconv.FormatInt(size, 10), "-snapshot-dir", filepath.Join(dir, fmt.Sprint("snap", size))).CombinedOutput()
		if err != nil {
			return fmt.Errorf("snapshot child: %v\n%s", err, out)
		}
		var hwm, stored, bytes int64
		var secs float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "hwm=%d stored=%d seconds=%g bytes=%d", &hwm, &stored, &secs, &bytes); err != nil {
			return fmt.Errorf("snapshot child said %q: %v", out, err)
		}
		target := "baseline"
		if size == 1<<30 {
			target = fmt.Sprintf("<= 128 MB; %.2fx the 64 MB baseline", float64(hwm)/float64(small))
		} else {
			small = hwm
		}
		fmt.Fprintf(w, "| %d MB | %.1f MB | %.1f s (%.0f MB/s) | %.1f MB | %s |\n", size>>20, float64(hwm)/(1<<20), secs, float64(size)/(1<<20)/secs, float64(stored)/(1<<20), target)
		fmt.Printf("  peak RSS %.1f MB, %.1f s\n", float64(hwm)/(1<<20), secs)
	}
	return nil
}

// snapshotChild is the child process: it makes a synthetic metadata file of size bytes (a
// valid header and end marker around section-like records), uploads it to an embedded server
// and prints its peak RSS (snapshotFileChild).
func snapshotChild(size int64, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "metadata.mfs.back")
	if err := writeSyntheticMetadata(path, size); err != nil {
		return err
	}
	return snapshotFileChild(path, dir)
}

func writeSyntheticMetadata(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	hdr := []byte(metafile.Signature)
	hdr = binary.BigEndian.AppendUint64(hdr, 1000001)
	hdr = binary.BigEndian.AppendUint64(hdr, 4242)
	bw.Write(hdr)
	// Node-like records: ids and sizes that vary, names that repeat in shape.
	rng := rand.New(rand.NewSource(1))
	rec := make([]byte, 0, 64)
	left := size - int64(len(hdr)) - int64(len(metafile.EOFMarker))
	for id := uint64(2); left > 0; id++ {
		rec = rec[:0]
		rec = binary.BigEndian.AppendUint32(rec, uint32(id))
		rec = append(rec, 1, 0x1, 0xa4)
		rec = binary.BigEndian.AppendUint32(rec, 1000+uint32(rng.Intn(3)))
		rec = binary.BigEndian.AppendUint64(rec, uint64(rng.Int63n(1<<32)))
		rec = fmt.Appendf(rec, "img_%07d.jpg", id)
		if int64(len(rec)) > left {
			rec = rec[:left]
		}
		bw.Write(rec)
		left -= int64(len(rec))
	}
	bw.WriteString(metafile.EOFMarker)
	return bw.Flush()
}

func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
