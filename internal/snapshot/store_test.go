package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/stream"
)

// testOptions use small chunks, so that test snapshots have many.
func testOptions() Options {
	o := DefaultOptions()
	o.ChunkSize = 4 << 10
	o.InFlight = 4
	o.ReadAhead = 16 << 10
	return o
}

// openStore opens a store that signs and verifies with a key pair of the test's own.
func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), jstest.Start(t), "t", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return withKeys(t, s)
}

func withKeys(t testing.TB, s *Store) *Store {
	k := signtest.New(t)
	return s.WithSigner(k.Signer).WithVerifier(k.Verifier)
}

// storedMsgs is how many messages the bucket's stream holds: chunks and metadata.
func storedMsgs(t *testing.T, s *Store) uint64 {
	t.Helper()
	si, err := s.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return si.State.Msgs
}

func fileSHA256(t *testing.T, path string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUploadDownload(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, version := mfstest.MakeMetadata(t, t.TempDir(), 4242, 20000)
	sum, content := fileSHA256(t, path)

	snap, err := s.Upload(ctx, path, Info{Timeline: 3, Time: 1700000123, Source: "host:metadata.mfs.back"})
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{Name: stream.SnapshotName(3, version), Timeline: 3, Version: version, MetaID: 4242, Time: 1700000123,
		Size: int64(len(content)), CompressedSize: snap.CompressedSize, SHA256: sum, Source: "host:metadata.mfs.back",
		MooseFS: mfstest.Dist(t).Version.String()} // the release that made it, recorded from its sections
	if snap != want {
		t.Fatalf("Upload = %+v, want %+v", snap, want)
	}
	if snap.CompressedSize <= 0 || snap.CompressedSize >= snap.Size/2 {
		t.Errorf("compressed %d of %d bytes; want less than half", snap.CompressedSize, snap.Size)
	}
	if got, err := s.Get(ctx, snap.Name); err != nil || got != snap {
		t.Errorf("Get = %+v, %v; want %+v", got, err, snap)
	}
	if got, err := s.List(ctx); err != nil || len(got) != 1 || got[0] != snap {
		t.Errorf("List = %+v, %v; want [%+v]", got, err, snap)
	}

	var buf bytes.Buffer
	if got, err := s.Download(ctx, snap.Name, &buf, nil); err != nil || got != snap {
		t.Fatalf("Download = %+v, %v", got, err)
	}
	if !bytes.Equal(buf.Bytes(), content) {
		t.Fatalf("Download wrote %d bytes differing from the %d uploaded", buf.Len(), len(content))
	}

	out := filepath.Join(t.TempDir(), "metadata.mfs")
	writeFile(t, out, []byte("an older file"))
	var calls [][2]int64
	got, err := s.DownloadFile(ctx, snap.Name, out, func(done, total int64) { calls = append(calls, [2]int64{done, total}) })
	if err != nil || got != snap {
		t.Fatalf("DownloadFile = %+v, %v", got, err)
	}
	if _, have := fileSHA256(t, out); !bytes.Equal(have, content) {
		t.Fatalf("DownloadFile wrote %d bytes differing from the %d uploaded", len(have), len(content))
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{snap.Size, snap.Size} {
		t.Fatalf("progress calls %v; want the last to be {%d %d}", calls, snap.Size, snap.Size)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] <= calls[i-1][0] {
			t.Fatalf("progress went from %d to %d", calls[i-1][0], calls[i][0])
		}
	}
	if ents, err := os.ReadDir(filepath.Dir(out)); err != nil || len(ents) != 1 {
		t.Fatalf("target directory holds %v, %v; want only the file", ents, err)
	}
}

func TestUploadIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 3000)
	first, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 100, Source: "first"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := storedMsgs(t, s)
	again, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 200, Source: "second"})
	if err != nil || again != first {
		t.Fatalf("second Upload = %+v, %v; want the stored %+v", again, err, first)
	}
	if got := storedMsgs(t, s); got != msgs {
		t.Fatalf("the bucket's stream went from %d to %d messages; want nothing sent", msgs, got)
	}
}

func TestConcurrentUploadsStoreOneObject(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 3000)
	var wg sync.WaitGroup
	snaps := make([]Snapshot, 4)
	errs := make([]error, len(snaps))
	for i := range snaps {
		wg.Go(func() { snaps[i], errs[i] = s.Upload(ctx, path, Info{Timeline: 1, Time: 100}) })
	}
	wg.Wait()
	for i := range snaps {
		if errs[i] != nil || snaps[i] != snaps[0] {
			t.Fatalf("upload %d = %+v, %v; want %+v", i, snaps[i], errs[i], snaps[0])
		}
	}
	oi, _, err := s.lookup(ctx, snaps[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := storedMsgs(t, s), uint64(oi.Chunks)+1; got != want {
		t.Fatalf("the bucket's stream holds %d messages; want %d (one object's chunks and metadata)", got, want)
	}
}

func TestUploadConflict(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, va := mfstest.MakeMetadata(t, t.TempDir(), 1, 500)
	b, vb := mfstest.MakeMetadata(t, t.TempDir(), 2, 500) // another file system, same version
	if va != vb {
		t.Fatalf("versions %d and %d; the test needs equal ones", va, vb)
	}
	stored, err := s.Upload(ctx, a, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Upload(ctx, b, Info{Timeline: 1, Time: 1})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), b) {
		t.Fatalf("got %v; want ErrConflict naming %s", err, b)
	}
	if got, err := s.Get(ctx, stored.Name); err != nil || got != stored {
		t.Fatalf("after the conflict Get = %+v, %v; want %+v unchanged", got, err, stored)
	}
	// The same file on another timeline is another snapshot.
	if _, err := s.Upload(ctx, b, Info{Timeline: 2, Time: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestUploadRefusesBadFiles(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	good, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 100)
	_, content := fileSHA256(t, good)
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte
		want    error
	}{
		{"truncated", content[:len(content)-5], metafile.ErrTruncated},
		{"header only", content[:metafile.HeaderSize], metafile.ErrTruncated},
		{"empty", nil, metafile.ErrTruncated},
		{"not metadata", append([]byte("MFSM 1.5"), content[8:]...), metafile.ErrSignature},
		{"missing", nil, os.ErrNotExist},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if tc.want != os.ErrNotExist {
			writeFile(t, path, tc.content)
		}
		_, err := s.Upload(ctx, path, Info{Timeline: 1})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v; want %v naming %s", tc.name, err, tc.want, path)
		}
	}
	if _, err := s.Upload(ctx, good, Info{Timeline: 0}); err == nil {
		t.Errorf("timeline 0 accepted")
	}
	if got := storedMsgs(t, s); got != 0 {
		t.Fatalf("the bucket's stream holds %d messages; want nothing sent", got)
	}
}

func TestListOrder(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	var files []string
	for _, inodes := range []int{30, 10, 20} { // versions 32, 12, 22
		p, _ := mfstest.MakeMetadata(t, t.TempDir(), 5, inodes)
		files = append(files, p)
	}
	for _, u := range []struct {
		file     int
		timeline uint64
	}{{0, 2}, {1, 10}, {2, 1}, {0, 1}, {1, 2}} {
		if _, err := s.Upload(ctx, files[u.file], Info{Timeline: u.timeline, Time: 1}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sn := range list {
		got = append(got, sn.Name)
	}
	want := []string{stream.SnapshotName(1, 22), stream.SnapshotName(1, 32), stream.SnapshotName(2, 12),
		stream.SnapshotName(2, 32), stream.SnapshotName(10, 12)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("List = %v; want %v", got, want)
	}
}

func TestListReportsForeignObjects(t *testing.T) {
	ctx := context.Background()
	js := jstest.Start(t)
	s, err := OpenWith(ctx, js, "t", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	s = withKeys(t, s)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 10)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, stream.SnapshotBucket("t"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutString(ctx, "notes.txt", "not a snapshot"); err != nil {
		t.Fatal(err)
	}
	_, err = s.List(ctx)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("List with a foreign object: %v; want ErrCorrupt naming notes.txt", err)
	}
	if err := obs.Delete(ctx, "notes.txt"); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(metaSubject(s.bucket, "garbled"))
	m.Data = []byte("{not json")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	_, err = s.List(ctx)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "garbled") {
		t.Fatalf("List with metadata that is not JSON: %v; want ErrCorrupt naming garbled", err)
	}
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(metaSubject(s.bucket, "garbled"))); err != nil {
		t.Fatal(err)
	}
	md := snap.metadata()
	delete(md, stream.SnapSHA256)
	if err := obs.UpdateMeta(ctx, snap.Name, jetstream.ObjectMeta{Name: snap.Name, Metadata: md}); err != nil {
		t.Fatal(err)
	}
	_, err = s.List(ctx)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), snap.Name) || !strings.Contains(err.Error(), stream.SnapSHA256) {
		t.Fatalf("List with a snapshot lacking its digest: %v; want ErrCorrupt naming %s and %q", err, snap.Name, stream.SnapSHA256)
	}
	if _, err := s.Download(ctx, snap.Name, &bytes.Buffer{}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Download of a snapshot lacking its digest: %v; want ErrCorrupt", err)
	}
}

func TestDeleteAndNotFound(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 10)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, snap.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, snap.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v; want ErrNotFound", err)
	}
	if err := s.Delete(ctx, snap.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v; want ErrNotFound", err)
	}
	if _, err := s.Download(ctx, snap.Name, &bytes.Buffer{}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Download after Delete: %v; want ErrNotFound", err)
	}
	if got := storedMsgs(t, s); got != 1 {
		t.Errorf("the bucket's stream holds %d messages; want only the deletion marker", got)
	}
	// A deleted snapshot can be uploaded again.
	if again, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1}); err != nil || again != snap {
		t.Fatalf("upload after Delete = %+v, %v; want %+v", again, err, snap)
	}
}

func TestDownloadStopsWhenCancelled(t *testing.T) {
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 20000)
	snap, err := s.Upload(context.Background(), path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := filepath.Join(t.TempDir(), "metadata.mfs")
	_, err = s.DownloadFile(ctx, snap.Name, out, func(done, total int64) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if ents, err := os.ReadDir(filepath.Dir(out)); err != nil || len(ents) != 0 {
		t.Fatalf("target directory holds %v, %v; want nothing", ents, err)
	}
}

func TestEmptyFileSystem(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path := filepath.Join(t.TempDir(), "metadata.mfs")
	writeFile(t, path, []byte(metafile.NewSignature))
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil || snap.Version != 1 || snap.Size != 8 {
		t.Fatalf("Upload of %q = %+v, %v; want version 1, 8 bytes", metafile.NewSignature, snap, err)
	}
	var buf bytes.Buffer
	if _, err := s.Download(ctx, snap.Name, &buf, nil); err != nil || buf.String() != metafile.NewSignature {
		t.Fatalf("Download = %q, %v; want %q", buf.String(), err, metafile.NewSignature)
	}
}
