package shipper

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestResumeRefusesAForeignTail: shipping resumes after the stream's last batch only when it
// is signed by the shipper's own key or a TRUSTED_KEYS one (the previous key of a rotation);
// a foreign last batch stops the shipper as another writer (exit status 4), naming it.
func TestResumeRefusesAForeignTail(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 100))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 100)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// The next key: a shipper signing with it resumes after the old key's batches only when
	// the old key is trusted.
	next := signtest.New(t)
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Signer = dir, KindMaster, testCluster, next.Signer
	r = startConfigured(t, n, cfg)
	if err := r.waitErr(t); !errors.Is(err, ErrNotSoleWriter) || !errors.Is(err, sign.ErrUntrusted) {
		t.Fatalf("new key, old key not trusted: %v; want ErrNotSoleWriter (untrusted key)", err)
	}
	cfg.Trusted = n.keys.Verifier
	appendFile(t, logPath(dir, 0), lines(101, 200))
	r = startConfigured(t, n, cfg)
	waitShipped(t, r, 1, 200)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// Someone without the key appends a batch that continues the history.
	body := []byte(lines(201, 201))
	info := stream.BatchInfo{Timeline: 1, FirstVersion: 201, LastVersion: 201, Lines: 1, FirstTime: 1700000020, LastTime: 1700000020,
		Sum: crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)), LastLineHash: stream.LineHash(body[:len(body)-1])}
	enc, _ := zstd.NewWriter(nil)
	data := enc.EncodeAll(body, nil)
	subj := stream.Subject(testCluster, 1)
	foreign := signtest.New(t)
	ack, err := n.js.PublishMsg(context.Background(), &nats.Msg{Subject: subj, Header: stream.SignedHeader(foreign.Signer, subj, info, data), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath(dir, 0), lines(201, 210))
	r = startConfigured(t, n, cfg)
	err = r.waitErr(t)
	want := fmt.Sprintf("stream message %d (%s", ack.Sequence, subj)
	if !errors.Is(err, ErrNotSoleWriter) || !strings.Contains(err.Error(), want) {
		t.Fatalf("after a foreign batch: %v; want ErrNotSoleWriter naming %q", err, want)
	}
}
