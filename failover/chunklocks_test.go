package failover

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mfsha/mfsha/shipper"
)

func TestReleaseChunkLocks(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	now := time.Unix(1796222300, 0)
	dir := t.TempDir()
	if n, _, err := releaseChunkLocks(dir, now, false, log); n != 0 || err != nil {
		t.Fatalf("without changelog.1.mfs: %d, %v; want 0, nil", n, err)
	}
	path := filepath.Join(dir, "changelog.1.mfs")
	dangling := "2585: 1796222290|CREATE(1002,w000315,1,420,18,0,0,0):1318\n" +
		"2586: 1796222290|ACQUIRE(1,1318)\n" +
		"2587: 1796222290|WRITE(1318,0,1,0):316\n"
	if err := os.WriteFile(path, []byte(dangling), 0o644); err != nil {
		t.Fatal(err)
	}
	n, _, err := releaseChunkLocks(dir, now, false, log)
	if err != nil || n != 1 {
		t.Fatalf("dangling WRITE: %d, %v; want 1 line appended", n, err)
	}
	b, _ := os.ReadFile(path)
	if want := dangling + "2588: 1796222300|UNLOCK(316)\n"; string(b) != want {
		t.Fatalf("changelog.1.mfs:\n%s\nwant:\n%s", b, want)
	}
	// A file that is not a contiguous changelog is left alone; the promotion goes on.
	holed := []byte("10: 1796222290|WRITE(3,0,1,0):2\n12: 1796222290|IDLE()\n")
	if err := os.WriteFile(path, holed, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, _, err := releaseChunkLocks(dir, now, false, log); n != 0 || err != nil {
		t.Fatalf("holed file: %d, %v; want 0, nil", n, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, holed) {
		t.Fatalf("holed file changed:\n%s", b)
	}
}

// A lock the handed-over metadata keeps (the standby folded the WRITE) is released too: after
// changelog.1.mfs's lines, or in a new changelog.1.mfs from the metadata's version.
func TestReleaseChunkLocksOfTheMetadata(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	now := time.Unix(1796222300, 0)
	dir := t.TempDir()
	// metadata.mfs of version 2588 whose CHNK 1.1 section holds chunk 316 locked until
	// 1796222410 (a WRITE at 1796222290) and chunk 317 unlocked.
	writeMetadata(t, filepath.Join(dir, "metadata.mfs"), 2588, map[uint64]uint32{316: 1796222410, 317: 0})
	path := filepath.Join(dir, "changelog.1.mfs")
	if n, _, err := releaseChunkLocks(dir, now, false, log); n != 1 || err != nil {
		t.Fatalf("metadata lock, no changelog.1.mfs: %d, %v; want 1 line", n, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2588: 1796222300|UNLOCK(316)\n" {
		t.Fatalf("new changelog.1.mfs: %q", b)
	}
	// With lines after the metadata: one that releases the chunk leaves nothing to do.
	if err := os.WriteFile(path, []byte("2588: 1796222295|UNLOCK(316)\n2589: 1796222295|IDLE()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, _, err := releaseChunkLocks(dir, now, false, log); n != 0 || err != nil {
		t.Fatalf("the lines release it: %d, %v; want 0", n, err)
	}
	// Lines that do not: the UNLOCK goes after them.
	if err := os.WriteFile(path, []byte("2588: 1796222295|IDLE()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, _, err := releaseChunkLocks(dir, now, false, log); n != 1 || err != nil {
		t.Fatalf("lines without its UNLOCK: %d, %v; want 1", n, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2588: 1796222295|IDLE()\n2589: 1796222300|UNLOCK(316)\n" {
		t.Fatalf("changelog.1.mfs: %q", b)
	}
}

// writeMetadata writes a metadata file of the given version whose CHNK 1.1 section holds the
// chunks with their lockedto (0: unlocked).
func writeMetadata(t *testing.T, path string, version uint64, lockedto map[uint64]uint32) {
	t.Helper()
	body := binary.BigEndian.AppendUint64(nil, 400) // nextchunkid
	for _, c := range slices.Sorted(maps.Keys(lockedto)) {
		body = binary.BigEndian.AppendUint64(body, c)
		body = binary.BigEndian.AppendUint32(body, 1)
		body = binary.BigEndian.AppendUint32(body, lockedto[c])
		body = append(body, 0)
	}
	body = append(body, make([]byte, 17)...)
	meta := []byte("MFSM 2.0")
	meta = binary.BigEndian.AppendUint64(meta, version)
	meta = binary.BigEndian.AppendUint64(meta, 77)
	meta = append(meta, "CHNK 1.1"...)
	meta = binary.BigEndian.AppendUint64(meta, uint64(len(body)))
	meta = append(append(meta, body...), "[MFS EOF MARKER]"...)
	if err := os.WriteFile(path, meta, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A master restarted on its own files (boot, retake) after it died between a WRITE and its
// UNLOCK: the lock is released after the newest line of the newest changelog file, whatever
// file the lines from the metadata's version on sit in, and the lines before the metadata
// (folded into it) do not count.
func TestReleaseLocalChunkLocks(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	now := time.Unix(1796222300, 0)
	type files map[string]string
	cases := []struct {
		name       string
		meta       string // metadata.mfs or metadata.mfs.back, at version 2586
		lockedto   map[uint64]uint32
		logs       files
		last       uint64
		first, n   uint64
		want       files // the files after, those not named unchanged
		unreadable bool
	}{{
		name: "dangling WRITE in changelog.0.mfs (SIGKILL)",
		meta: "metadata.mfs.back",
		logs: files{
			// Before the metadata: its WRITE (316) is folded, the metadata says unlocked.
			"changelog.1.mfs": "2584: 1796222280|WRITE(1300,0,1,0):316\n2585: 1796222280|IDLE()\n",
			"changelog.0.mfs": "2586: 1796222290|CREATE(1002,w000315,1,420,18,0,0,0):1318\n2587: 1796222290|WRITE(1318,0,1,0):317\n",
		},
		last: 2587, first: 2588, n: 1,
		want: files{"changelog.0.mfs": "2586: 1796222290|CREATE(1002,w000315,1,420,18,0,0,0):1318\n2587: 1796222290|WRITE(1318,0,1,0):317\n2588: 1796222300|UNLOCK(317)\n"},
	}, {
		name: "the WRITE in an older file, released lines in the newest",
		meta: "metadata.mfs.back",
		logs: files{
			"changelog.2.mfs": "2580: 1796222280|IDLE()\n",
			"changelog.1.mfs": "2585: 1796222280|IDLE()\n2586: 1796222290|WRITE(1318,0,1,0):317\n2587: 1796222290|WRITE(1319,0,1,0):318\n",
			"changelog.0.mfs": "2588: 1796222291|UNLOCK(318)\n2589: 1796222291|IDLE()\n",
		},
		last: 2589, first: 2590, n: 1,
		want: files{"changelog.0.mfs": "2588: 1796222291|UNLOCK(318)\n2589: 1796222291|IDLE()\n2590: 1796222300|UNLOCK(317)\n"},
	}, {
		name: "newest file empty: the UNLOCK goes after the newest line",
		meta: "metadata.mfs.back",
		logs: files{
			"changelog.1.mfs": "2586: 1796222290|WRITE(1318,0,1,0):317\n",
			"changelog.0.mfs": "",
		},
		last: 2586, first: 2587, n: 1,
		want: files{"changelog.1.mfs": "2586: 1796222290|WRITE(1318,0,1,0):317\n2587: 1796222300|UNLOCK(317)\n", "changelog.0.mfs": ""},
	}, {
		name:     "clean stop: the lock is in metadata.mfs, lines end before it",
		meta:     "metadata.mfs",
		lockedto: map[uint64]uint32{316: 1796222410, 319: 0},
		logs:     files{"changelog.0.mfs": "2585: 1796222290|WRITE(1300,0,1,0):316\n"},
		last:     2585, first: 2586, n: 1,
		want: files{"changelog.0.mfs": "2585: 1796222290|WRITE(1300,0,1,0):316\n2586: 1796222300|UNLOCK(316)\n"},
	}, {
		name:     "metadata lock, no changelog at all: a new changelog.0.mfs",
		meta:     "metadata.mfs",
		lockedto: map[uint64]uint32{316: 1796222410},
		first:    2586, n: 1,
		want: files{"changelog.0.mfs": "2586: 1796222300|UNLOCK(316)\n"},
	}, {
		name: "released, rolled back, deleted, expired: nothing to do",
		meta: "metadata.mfs.back",
		logs: files{"changelog.0.mfs": "2586: 1796222290|WRITE(1318,0,1,0):317\n2587: 1796222290|UNLOCK(317)\n" +
			"2588: 1796222290|WRITE(1319,0,1,0):318\n2589: 1796222290|ROLLBACK(1319,0,0,318)\n" +
			"2590: 1796222100|WRITE(1320,0,1,0):319\n" +
			"2591: 1796222290|WRITE(1321,0,1,0):320\n2592: 1796222290|CHUNKDEL(320,1)\n"},
		last: 2592, first: 2593, n: 0,
	}, {
		name:       "lines missing after the metadata: left alone",
		meta:       "metadata.mfs.back",
		logs:       files{"changelog.0.mfs": "2588: 1796222290|WRITE(1318,0,1,0):317\n"},
		last:       2588,
		unreadable: true,
	}, {
		name:       "a hole in the lines: left alone",
		meta:       "metadata.mfs.back",
		logs:       files{"changelog.0.mfs": "2586: 1796222290|WRITE(1318,0,1,0):317\n2588: 1796222290|IDLE()\n"},
		last:       2588,
		unreadable: true,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMetadata(t, filepath.Join(dir, c.meta), 2586, c.lockedto)
			// An older metadata file must not be the one followed.
			writeMetadata(t, filepath.Join(dir, "metadata.mfs.back.1"), 2000, map[uint64]uint32{999: 1796222410})
			for name, b := range c.logs {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			first, n, _, err := releaseLocalChunkLocks(dir, c.last, now, log)
			if err != nil {
				t.Fatal(err)
			}
			if c.unreadable {
				c.first = 0
			}
			if first != c.first || n != c.n {
				t.Fatalf("first %d, added %d; want %d, %d", first, n, c.first, c.n)
			}
			if c.want == nil {
				c.want = files{}
			}
			for name, b := range c.logs {
				if _, ok := c.want[name]; !ok {
					c.want[name] = b
				}
			}
			for name, want := range c.want {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
				}
			}
			// What prepareLocal and takeOver expect: the newest line is the last added.
			if last, _, _, err := shipper.LastLine(dir, shipper.KindMaster); err != nil || n > 0 && last != first+n-1 {
				t.Errorf("newest local line %d, %v; want %d", last, err, first+n-1)
			}
			if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}
