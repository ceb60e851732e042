package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestUnsignedOrForeignSnapshotsAreRefused: a snapshot whose metadata is not signed by a
// trusted key is refused before any of it is read, whatever else in it is consistent.
func TestUnsignedOrForeignSnapshotsAreRefused(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	foreign := s.WithSigner(signtest.New(t).Signer)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 2000)
	for i, tc := range []struct {
		name   string
		forge  func(t *testing.T, snap Snapshot)
		wantIs error
	}{
		{"signed with a foreign key", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			replace(t, s, snap.Name, data, signedMetadata(foreign, snap), oi.Digest)
		}, sign.ErrUntrusted},
		{"unsigned", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			replace(t, s, snap.Name, data, snap.metadata(), oi.Digest)
		}, sign.ErrUnsigned},
		{"time changed after signing", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			md := oi.Metadata
			md[stream.SnapTime] = "2000000000"
			replace(t, s, snap.Name, data, md, oi.Digest)
		}, sign.ErrBadSignature},
		{"signature of another snapshot", func(t *testing.T, snap Snapshot) {
			oi, _, data := stored(t, s, snap.Name)
			other := snap
			other.Name, other.Timeline = stream.SnapshotName(99, snap.Version), 99
			good := signedMetadata(s, other)
			md := oi.Metadata
			md[stream.SnapSig], md[stream.SnapKeyID] = good[stream.SnapSig], good[stream.SnapKeyID]
			replace(t, s, snap.Name, data, md, oi.Digest)
		}, sign.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := s.Upload(ctx, path, Info{Timeline: uint64(i + 1), Time: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Download(ctx, snap.Name, &bytes.Buffer{}, nil); err != nil {
				t.Fatalf("before forging: %v", err)
			}
			tc.forge(t, snap)
			out := filepath.Join(t.TempDir(), "metadata.mfs")
			_, err = s.DownloadFile(ctx, snap.Name, out, nil)
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), snap.Name) {
				t.Fatalf("got %v; want %v naming %s", err, tc.wantIs, snap.Name)
			}
			t.Log(err)
			if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: %v; want nothing written", out, err)
			}
		})
	}
}

// TestStoreNeedsItsKeys: there is no unsigned mode.
func TestStoreNeedsItsKeys(t *testing.T) {
	ctx := context.Background()
	bare, err := OpenWith(ctx, jstest.Start(t), "t", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 10)
	if _, err := bare.Upload(ctx, path, Info{Timeline: 1, Time: 1}); err == nil || !strings.Contains(err.Error(), "SIGNING_KEY") {
		t.Fatalf("upload without a signer: %v; want an error naming SIGNING_KEY", err)
	}
	k := signtest.New(t)
	snap, err := bare.WithSigner(k.Signer).Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Download(ctx, snap.Name, &bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "TRUSTED_KEYS") {
		t.Fatalf("download without a verifier: %v; want an error naming TRUSTED_KEYS", err)
	}
	// Rotation: a verifier trusting the old and the new key reads both.
	k2 := signtest.New(t)
	both, err := sign.NewVerifier(k.Signer.Public(), k2.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	snap2, err := bare.WithSigner(k2.Signer).Upload(ctx, path, Info{Timeline: 2, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{snap.Name, snap2.Name} {
		if _, err := bare.WithVerifier(both).Download(ctx, n, &bytes.Buffer{}, nil); err != nil {
			t.Errorf("download %s trusting both keys: %v", n, err)
		}
	}
	if _, err := bare.WithVerifier(k2.Verifier).Download(ctx, snap.Name, &bytes.Buffer{}, nil); !errors.Is(err, sign.ErrUntrusted) {
		t.Errorf("download of the old key's snapshot trusting only the new key: %v; want ErrUntrusted", err)
	}
}

// TestUploadSignsAStoredCopy: the same file stored unsigned (before signatures existed) or
// signed by the previous key is signed again by the next upload, without sending it again.
func TestUploadSignsAStoredCopy(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path, _ := mfstest.MakeMetadata(t, t.TempDir(), 7, 2000)
	snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	oi, _, data := stored(t, s, snap.Name)
	replace(t, s, snap.Name, data, snap.metadata(), oi.Digest) // unsigned
	before := storedMsgs(t, s)
	if _, err := s.Upload(ctx, path, Info{Timeline: 1, Time: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Download(ctx, snap.Name, &bytes.Buffer{}, nil); err != nil {
		t.Fatalf("after signing the stored copy: %v", err)
	}
	next := signtest.New(t)
	rotated := s.WithSigner(next.Signer).WithVerifier(next.Verifier)
	if _, err := rotated.Download(ctx, snap.Name, &bytes.Buffer{}, nil); !errors.Is(err, sign.ErrUntrusted) {
		t.Fatalf("the next key's reader before the upload: %v; want ErrUntrusted", err)
	}
	if _, err := rotated.Upload(ctx, path, Info{Timeline: 1, Time: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Download(ctx, snap.Name, &bytes.Buffer{}, nil); err != nil {
		t.Fatalf("the next key's reader after the upload: %v", err)
	}
	// Two metadata rewrites (each replaces the previous by rollup), no chunk sent again.
	if got := storedMsgs(t, s); got != before {
		t.Fatalf("the bucket holds %d messages, %d before: the file was sent again", got, before)
	}
}
