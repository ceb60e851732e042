package restorer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mfsha/mfsha/internal/stream"
)

// TestBadLastBatchHidesNothingBefore: found by trying it, a batch header First=0,
// Last=2^64-1, Lines=0 was accepted (the range check wrapped around) and status showed version
// 18446744073709551615; and any bad last batch hid the whole timeline from restore. Now the
// timeline ends at the last good batch, the bad one is reported by its sequence, versions
// before it restore, and a restore past it fails naming it.
func TestBadLastBatchHidesNothingBefore(t *testing.T) {
	js, store, _ := shipped(t) // lines 1..3001 and a snapshot of version 1002
	ctx := context.Background()
	var seqs []uint64
	for _, h := range []map[string]string{
		{stream.HdrFirstVersion: "0", stream.HdrLastVersion: "18446744073709551615", stream.HdrLines: "0"},
		{stream.HdrFirstVersion: "3002", stream.HdrLastVersion: "3001", stream.HdrLines: "0"},
	} {
		info := stream.BatchInfo{Timeline: 1, FirstVersion: 3002, LastVersion: 3002, Lines: 1, FirstTime: 1700000030, LastTime: 1700000030}
		hdr := info.Header()
		for k, v := range h {
			hdr.Set(k, v)
		}
		ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: stream.Subject(cluster, 1), Header: hdr, Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	tls, err := stream.Timelines(ctx, js, cluster)
	if err != nil {
		t.Fatalf("Timelines with a bad last batch: %v", err)
	}
	if len(tls) != 1 || tls[0].LastVersion != 3001 || tls[0].BadSeq != seqs[0] || !strings.Contains(tls[0].BadErr, stream.HdrFirstVersion) {
		t.Fatalf("timelines %+v; want one ending at 3001 with bad batch %d reported", tls, seqs[0])
	}
	for _, v := range []uint64{500, 2500, 3001} {
		out := t.TempDir()
		_, o, err := restore(t, js, store, Target{Version: v}, out, false)
		if err != nil || o.Version != v+1 {
			t.Fatalf("restore to version %d before the bad batch: %+v, %v", v, o, err)
		}
		if names := files(t, filepath.Join(out, "metadata.mfs")); !names[fmt.Sprintf("f%d", v)] {
			t.Fatalf("restore to version %d: f%d missing", v, v)
		}
	}
	_, _, err = restore(t, js, store, Target{Version: 3002}, t.TempDir(), false)
	if !errors.Is(err, ErrAfterNewest) || !strings.Contains(err.Error(), fmt.Sprintf("stream message %d", seqs[0])) {
		t.Fatalf("restore past the bad batch: %v; want ErrAfterNewest naming stream message %d", err, seqs[0])
	}
}
