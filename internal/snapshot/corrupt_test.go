package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/stream"
)

// chunkSeqs are the stream sequences of an object's chunks, in order.
func chunkSeqs(t *testing.T, s *Store, oi *jetstream.ObjectInfo) []uint64 {
	t.Helper()
	var seqs []uint64
	for seq := uint64(1); ; seq++ {
		m, err := s.stream.GetMsg(context.Background(), seq, jetstream.WithGetMsgSubject(chunkSubject(s.bucket, oi.NUID)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return seqs
		}
		if err != nil {
			t.Fatal(err)
		}
		seq = m.Sequence
		seqs = append(seqs, seq)
	}
}

// stored returns an object's metadata, the sequence that holds it, and its stored bytes.
func stored(t *testing.T, s *Store, name string) (*jetstream.ObjectInfo, uint64, []byte) {
	t.Helper()
	oi, seq, err := s.lookup(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, q := range chunkSeqs(t, s, oi) {
		m, err := s.stream.GetMsg(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, m.Data...)
	}
	return oi, seq, data
}

// replace stores data as the object name's new chunks with the metadata md. The object
// store's digest is that of data, unless digest is set.
func replace(t *testing.T, s *Store, name string, data []byte, md map[string]string, digest string) {
	t.Helper()
	ctx := context.Background()
	_, prev, err := s.lookup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.newChunkWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.release()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	oi := w.info(name, md)
	if digest != "" {
		oi.Digest = digest
	}
	if err := s.publishMeta(ctx, oi, prev); err != nil {
		t.Fatal(err)
	}
}

func compress(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

// contentMetadata is the metadata of snap with the size and SHA-256 of content, signed by s.
func contentMetadata(s *Store, snap Snapshot, content []byte) map[string]string {
	sum := sha256.Sum256(content)
	snap.Size, snap.SHA256 = int64(len(content)), hex.EncodeToString(sum[:])
	return signedMetadata(s, snap)
}

// signedMetadata is the metadata of snap signed by s's key: what a writer holding the key
// (a shipper with a bug) would store, so that the checks behind the signature are reached.
func signedMetadata(s *Store, snap Snapshot) map[string]string {
	md := snap.metadata()
	s.signMetadata(snap, md)
	return md
}

func TestCorruptSnapshotsFailDownload(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, version := mfstest.MakeMetadata(t, t.TempDir(), 7, 5000)
	_, content := fileSHA256(t, path)
	other, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 4000)
	_, otherContent := fileSHA256(t, other)

	for i, tc := range []struct {
		name    string
		corrupt func(t *testing.T, snap Snapshot)
		want    string // in the error, besides the object's name
	}{
		{"a middle chunk deleted", func(t *testing.T, snap Snapshot) {
			oi, _, _ := stored(t, s, snap.Name)
			seqs := chunkSeqs(t, s, oi)
			if err := s.stream.DeleteMsg(ctx, seqs[len(seqs)/2]); err != nil {
				t.Fatal(err)
			}
		}, "chunks are stored"},
		{"the last chunk deleted", func(t *testing.T, snap Snapshot) {
			oi, _, _ := stored(t, s, snap.Name)
			seqs := chunkSeqs(t, s, oi)
			if err := s.stream.DeleteMsg(ctx, seqs[len(seqs)-1]); err != nil {
				t.Fatal(err)
			}
		}, "chunks are stored"},
		{"every chunk purged", func(t *testing.T, snap Snapshot) {
			oi, _, _ := stored(t, s, snap.Name)
			if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(s.bucket, oi.NUID))); err != nil {
				t.Fatal(err)
			}
		}, "0 of its"},
		{"a stored byte changed", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			data[len(data)/2] ^= 0x40
			replace(t, s, snap.Name, data, oi.Metadata, oi.Digest)
		}, "do not match the object digest"},
		{"a stored byte changed and the object digest recomputed", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			data[len(data)/2] ^= 0x40
			replace(t, s, snap.Name, data, oi.Metadata, "")
		}, "decompress"},
		{"bytes after the compressed data", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			replace(t, s, snap.Name, append(data, "trailing"...), oi.Metadata, "")
		}, "decompress"},
		{"another snapshot's bytes under this metadata", func(t *testing.T, snap Snapshot) {
			oi, _, _ := stored(t, s, snap.Name)
			replace(t, s, snap.Name, compress(t, otherContent), oi.Metadata, "")
		}, "metadata says"},
		{"the SHA-256 in the metadata changed", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			snap.SHA256 = strings.Repeat("0", 64)
			replace(t, s, snap.Name, data, signedMetadata(s, snap), oi.Digest)
		}, "SHA-256"},
		{"the size in the metadata smaller", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			snap.Size--
			replace(t, s, snap.Name, data, signedMetadata(s, snap), oi.Digest)
		}, "metadata says "},
		{"a truncated file stored with matching digests", func(t *testing.T, snap Snapshot) {
			cut := content[:len(content)-100]
			replace(t, s, snap.Name, compress(t, cut), contentMetadata(s, snap, cut), "")
		}, "end marker is missing"},
		{"a file of another version stored with matching digests", func(t *testing.T, snap Snapshot) {
			replace(t, s, snap.Name, compress(t, otherContent), contentMetadata(s, snap, otherContent), "")
		}, "header says version 4002 metaid 7, metadata says version " + strconv.FormatUint(version, 10)},
		{"metadata that is not JSON", func(t *testing.T, snap Snapshot) {
			m := nats.NewMsg(metaSubject(s.bucket, snap.Name))
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			m.Data = []byte("{not json")
			if _, err := s.js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}, "metadata message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := s.Upload(ctx, path, Info{Timeline: uint64(i + 1), Time: 1})
			if err != nil {
				t.Fatal(err)
			}
			tc.corrupt(t, snap)
			out := filepath.Join(t.TempDir(), "metadata.mfs")
			writeFile(t, out, []byte("precious"))
			_, err = s.DownloadFile(ctx, snap.Name, out, nil)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), snap.Name) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want ErrCorrupt naming %s and saying %q", err, snap.Name, tc.want)
			}
			t.Log(err)
			if b, err := os.ReadFile(out); err != nil || string(b) != "precious" {
				t.Fatalf("target is now %q, %v; want it untouched", b, err)
			}
			if ents, err := os.ReadDir(filepath.Dir(out)); err != nil || len(ents) != 1 {
				t.Fatalf("target directory holds %v, %v; want only the target", ents, err)
			}
		})
	}
}

func TestAbortedUploadLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	w, err := s.newChunkWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.release()
	if _, err := w.Write(bytes.Repeat([]byte("chunk"), 10*testOptions().ChunkSize)); err != nil {
		t.Fatal(err)
	}
	if got := storedMsgs(t, s); got == 0 {
		t.Fatalf("nothing stored before the abort; the test needs chunks to purge")
	}
	if err := w.abort(); err != nil {
		t.Fatal(err)
	}
	if got := storedMsgs(t, s); got != 0 {
		t.Fatalf("%d messages left after the abort; want none", got)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Fatal("Write after abort succeeded")
	}
}

// TestObjectStoreCompatibility: nats.go's ObjectStore reads what Upload writes, and Download
// reads what nats.go writes.
func TestObjectStoreCompatibility(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	obs := s.obs
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 3000)
	_, content := fileSHA256(t, path)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	data, err := obs.GetBytes(gctx, snap.Name) // verifies the object store's digest
	if err != nil {
		t.Fatalf("nats.go reading %s: %v", snap.Name, err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	if got, err := dec.DecodeAll(data, nil); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("nats.go read %d bytes decompressing to %d bytes (%v); want the %d uploaded", len(data), len(got), err, len(content))
	}

	name := stream.SnapshotName(2, snap.Version)
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: name, Metadata: contentMetadata(s, Snapshot{Name: name, Timeline: 2,
		Version: snap.Version, MetaID: snap.MetaID, Time: 5}, content),
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: 1000}}, bytes.NewReader(compress(t, content))); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Download(ctx, name, &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), content) {
		t.Fatalf("Download of nats.go's object: %d bytes, %v; want the %d of the file", buf.Len(), err, len(content))
	}
}

// TestChunksVanishingWhileRead: chunks deleted after the count are found when the stream of
// chunks ends early.
func TestChunksVanishingWhileRead(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 3000)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	oi, _, _ := stored(t, s, snap.Name)
	r, err := s.openChunks(ctx, oi)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	claims := *oi
	claims.Chunks++ // as if the last chunk had gone between the count and the read
	r.oi = &claims
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "stored chunks end at chunk") {
		t.Fatalf("read %d bytes, then %v; want ErrCorrupt saying the chunks end early", n, err)
	}
}

func TestPurgeOrphans(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 1000)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := storedMsgs(t, s)
	// What a process that died during an upload leaves: chunks without metadata.
	w, err := s.newChunkWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.release()
	if _, err := w.Write(bytes.Repeat([]byte("orphan"), 3*testOptions().ChunkSize)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeOrphans(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("PurgeOrphans(1h) = %d, %v; want nothing purged: the chunks are new", n, err)
	}
	if n, err := s.PurgeOrphans(ctx, 0); err != nil || n != 1 {
		t.Fatalf("PurgeOrphans(0) = %d, %v; want the orphan purged", n, err)
	}
	if got := storedMsgs(t, s); got != want {
		t.Fatalf("the bucket's stream holds %d messages; want %d, the snapshot's", got, want)
	}
	if _, err := s.Download(ctx, snap.Name, io.Discard, nil); err != nil {
		t.Fatalf("the snapshot after PurgeOrphans: %v", err)
	}
}

// TestUploadRepairsAnObjectWithoutItsChunks: a snapshot whose metadata is stored but whose
// chunks are gone (an upload cut short between the two) fails every download; the next upload
// of the same file must store it again instead of taking it for stored.
func TestUploadRepairsAnObjectWithoutItsChunks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 3000)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	oi, _, _ := stored(t, s, snap.Name)
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(s.bucket, oi.NUID))); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "metadata.mfs")
	if _, err := s.DownloadFile(ctx, snap.Name, out, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("download without chunks: %v; want ErrCorrupt", err)
	}
	if _, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 2}); err != nil {
		t.Fatalf("upload again: %v", err)
	}
	if _, err := s.DownloadFile(ctx, snap.Name, out, nil); err != nil {
		t.Fatalf("download after the second upload: %v", err)
	}
	sum, _ := fileSHA256(t, path)
	if got, _ := fileSHA256(t, out); got != sum {
		t.Fatalf("downloaded SHA-256 %s; want the file's %s", got, sum)
	}
}

// TestCancelledUploadsLeaveNoObjectWithoutChunks: an upload whose context ends at any moment
// either stores a snapshot that downloads or leaves none visible. Cancellations are spread
// around the end of an upload, where the metadata is published: a cancellation after the
// server stored it but before its acknowledgement arrived used to purge the chunks of a
// visible object.
func TestCancelledUploadsLeaveNoObjectWithoutChunks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, version := mfstest.MakeMetadata(t, t.TempDir(), 7, 3000)
	var took time.Duration // the fastest of a few uploads
	for tl := uint64(1); tl <= 5; tl++ {
		start := time.Now()
		if _, err := s.Upload(ctx, path, Info{Timeline: 1000 + tl, Time: 1}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); took == 0 || d < took {
			took = d
		}
	}
	const n = 150
	visible := 0
	for i := range n {
		tl := uint64(i + 1)
		cctx, cancel := context.WithTimeout(ctx, took*time.Duration(30+i)/100)
		_, uerr := s.Upload(cctx, path, Info{Timeline: tl, Time: 1})
		cancel()
		name := stream.SnapshotName(tl, version)
		if _, err := s.Get(ctx, name); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			t.Fatalf("upload %d (%v): get: %v", i, uerr, err)
		}
		visible++
		out := filepath.Join(t.TempDir(), "metadata.mfs")
		if _, err := s.DownloadFile(ctx, name, out, nil); err != nil {
			t.Fatalf("upload %d cancelled after %v (its error: %v) left %s visible, but: %v", i, took*time.Duration(30+i)/100, uerr, name, err)
		}
	}
	t.Logf("one upload took %v; %d of %d cancelled uploads stored their snapshot", took, visible, n)
}
