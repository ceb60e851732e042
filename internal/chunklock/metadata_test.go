package chunklock

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chnkRecord is one chunk record of CHNK 1.minor, as chunks.c chunk_store writes it (pairs:
// the number of storage-class pairs of a 1.2 record, their bytes zero).
func chnkRecord(minor int, chunk uint64, version, lockedto uint32, pairs int) []byte {
	b := binary.BigEndian.AppendUint64(nil, chunk)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint32(b, lockedto)
	if minor >= 1 {
		flags := byte(0)
		if pairs > 0xff {
			flags = 0x80
		}
		b = append(b, flags)
	}
	if minor >= 2 {
		b = append(b, byte(pairs))
		n := 4 * pairs
		if pairs > 1 {
			n++
		}
		b = append(b, make([]byte, n)...)
	}
	return b
}

// metadataWith writes a metadata file of version v with a SESS section and a CHNK 1.minor
// section holding records, then the end record.
func metadataWith(t *testing.T, v uint64, minor int, records ...[]byte) string {
	t.Helper()
	section := func(name string, body []byte) []byte {
		b := append([]byte(name), make([]byte, 8)...)
		binary.BigEndian.PutUint64(b[8:], uint64(len(body)))
		return append(b, body...)
	}
	b := []byte("MFSM 2.0")
	b = binary.BigEndian.AppendUint64(b, v)
	b = binary.BigEndian.AppendUint64(b, 77)
	b = append(b, section("SESS 1.6", make([]byte, 40))...)
	body := binary.BigEndian.AppendUint64(nil, 1000) // nextchunkid
	for _, r := range records {
		body = append(body, r...)
	}
	body = append(body, chnkRecord(minor, 0, 0, 0, 0)...)
	b = append(b, section("CHNK 1."+string(rune('0'+minor)), body)...)
	b = append(b, "[MFS EOF MARKER]"...)
	path := filepath.Join(t.TempDir(), "metadata.mfs")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMetadataLocks: the write locks a metadata file keeps that may still hold at now (their
// expiry between now and now + LockTimeout + ClockSlack), in each CHNK format. Not an unlocked
// chunk (3.0.117 clears lockedto), nor an expired lock (4.x keeps the unlock's time minus one
// for every chunk ever written), nor a chunk kept "for future deletion" for 7 days.
func TestMetadataLocks(t *testing.T) {
	now := time.Unix(1796222300, 0)
	for minor := range 3 {
		pairs := []int{0, 1, 3, 0x100, 1, 3}
		if minor < 2 {
			pairs = []int{0, 0, 0, 0, 0, 0}
		}
		path := metadataWith(t, 2588, minor,
			chnkRecord(minor, 5, 1, 0, pairs[0]),          // unlocked
			chnkRecord(minor, 6, 1, 1796222410, pairs[1]), // locked until 1796222410
			chnkRecord(minor, 7, 2, 0, pairs[2]),
			chnkRecord(minor, 8, 1, 1796222300, pairs[3]),          // until now
			chnkRecord(minor, 9, 1, 1796222299, pairs[4]),          // unlocked a second before now (4.x)
			chnkRecord(minor, 10, 1, 1796222300+7*86400, pairs[5])) // for future deletion
		v, locks, err := MetadataLocks(path, now)
		if err != nil || v != 2588 || len(locks) != 2 || locks[0] != (Lock{Chunk: 6, Time: 1796222290, Op: "metadata"}) || locks[1].Chunk != 8 {
			t.Errorf("CHNK 1.%d: version %d, locks %+v, %v; want 2588 and chunks 6 (locked at 1796222290) and 8", minor, v, locks, err)
		}
	}
	// A bad ending names the section.
	path := metadataWith(t, 10, 1, chnkRecord(1, 5, 1, 0, 0))
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-16-17], 0o644) // the end record and the EOF marker cut off
	if _, _, err := MetadataLocks(path, now); err == nil || !strings.Contains(err.Error(), "CHNK 1.1") {
		t.Errorf("a cut CHNK section: %v; want an error naming it", err)
	}
}
