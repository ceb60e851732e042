package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
)

func openStore(t *testing.T) (*Store, jetstream.JetStream) {
	t.Helper()
	js := jstest.Start(t)
	s, err := Open(context.Background(), js, "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func TestUploadDownloadRealMetadata(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	path, version := mfstest.MakeMetadata(t, t.TempDir(), 4242, 20000)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1700000123, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != version || snap.MetaID != 4242 || snap.CompressedSize >= snap.Size {
		t.Fatalf("got %+v; want version %d, metaid 4242, compressed", snap, version)
	}
	again, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1700000999})
	if err != nil || again.Time != 1700000123 {
		t.Fatalf("re-upload: %+v, %v; want the stored snapshot unchanged", again, err)
	}
	out := filepath.Join(t.TempDir(), "metadata.mfs")
	var calls int
	got, err := s.DownloadFile(ctx, snap.Name, out, func(done, total int64) { calls++ })
	if err != nil || got.SHA256 != snap.SHA256 {
		t.Fatalf("download: %+v, %v", got, err)
	}
	want, _ := os.ReadFile(path)
	have, _ := os.ReadFile(out)
	if !bytes.Equal(want, have) || calls == 0 {
		t.Fatalf("downloaded %d bytes (progress calls %d), want the %d uploaded", len(have), calls, len(want))
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0] != snap {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestUploadRefusesBadFile(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 100)
	b, _ := os.ReadFile(path)
	trunc := filepath.Join(t.TempDir(), "metadata.mfs.back")
	os.WriteFile(trunc, b[:len(b)-5], 0o644)
	_, err := s.Upload(ctx, trunc, Info{Timeline: 1})
	if !errors.Is(err, metafile.ErrTruncated) || !strings.Contains(err.Error(), trunc) {
		t.Fatalf("got %v, want ErrTruncated naming %s", err, trunc)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Fatalf("a bad file was stored: %+v", list)
	}
}

func TestCorruptObjectLeavesTargetUntouched(t *testing.T) {
	ctx := context.Background()
	s, js := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 5000)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Replace the stored bytes with other bytes but keep the metadata: a corruption that the
	// object store's own digest cannot see, since it is recomputed over the new bytes.
	obs, _ := js.ObjectStore(ctx, "MFSHA_t_snap")
	oi, _ := obs.GetInfo(ctx, snap.Name)
	other, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 10)
	f, _ := os.Open(other)
	defer f.Close()
	if _, err := s.Upload(ctx, other, Info{Timeline: 9, Time: 1}); err != nil {
		t.Fatal(err)
	}
	src, _ := obs.GetBytes(ctx, "metadata.t000009.v00000000000000000012.mfs.zst")
	if _, err := obs.PutBytes(ctx, snap.Name, src); err != nil {
		t.Fatal(err)
	}
	if err := obs.UpdateMeta(ctx, snap.Name, jetstream.ObjectMeta{Name: snap.Name, Metadata: oi.Metadata}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "metadata.mfs")
	os.WriteFile(out, []byte("precious"), 0o644)
	_, err = s.DownloadFile(ctx, snap.Name, out, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), snap.Name) {
		t.Fatalf("got %v, want ErrCorrupt naming %s", err, snap.Name)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatalf("target changed to %d bytes", len(b))
	}
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestPlanPrune(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	hour := int64(3600)
	snap := func(tl, v uint64, ago int64) Snapshot {
		return Snapshot{Name: string(rune('a' + v)), Timeline: tl, Version: v, Time: now.Unix() - ago*hour}
	}
	names := func(ss []Snapshot) string {
		var b strings.Builder
		for _, s := range ss {
			b.WriteString(s.Name)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name       string
		in         []Snapshot
		keep, drop string
	}{
		{"all recent", []Snapshot{snap(1, 1, 3), snap(1, 2, 2), snap(1, 3, 1)}, "bcd", ""},
		{"keeps the newest older one as the window's base", []Snapshot{snap(1, 1, 30), snap(1, 2, 26), snap(1, 3, 10)}, "cd", "b"},
		{"keeps the newest of an old timeline", []Snapshot{snap(1, 1, 50), snap(1, 2, 40), snap(2, 3, 30), snap(2, 4, 1)}, "cde", "b"},
		{"empty", nil, "", ""},
	} {
		keep, drop := PlanPrune(tc.in, now, 24*time.Hour)
		if names(keep) != tc.keep || names(drop) != tc.drop {
			t.Errorf("%s: keep %q drop %q, want keep %q drop %q", tc.name, names(keep), names(drop), tc.keep, tc.drop)
		}
	}
}
