package shipper

import (
	"context"
	"errors"
	"github.com/mfsha/mfsha/internal/changelog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/stream"
)

func TestShipsEveryLineOnce(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 1), lines(1, 700))
	writeFile(t, logPath(dir, 0), lines(701, 1000))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 1000)
	appendFile(t, logPath(dir, 0), lines(1001, 1500))
	waitShipped(t, r, 1, 1500)
	checkStream(t, n, map[uint64]string{1: lines(1, 1500)})
}

func TestPartialLineWaitsForNewline(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 10))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 10)
	full := lines(11, 11)
	appendFile(t, logPath(dir, 0), full[:12])
	// Let the shipper see the partial line: several polls and a file event.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if p := r.sh.Shipped(); p.Next != 11 {
			t.Fatalf("shipped a partial line: position %+v", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	appendFile(t, logPath(dir, 0), full[12:])
	waitShipped(t, r, 1, 11)
	checkStream(t, n, map[uint64]string{1: lines(1, 11)})
}

// TestRotationWhileReading: the hourly rename of the live file while it is being read. First
// made deterministic on the reader alone: from inside its callback for line 10, while lines
// 11..1000 wait in its buffer, the master appends 1001..1500, renames the file away and starts
// a new live file; 1001..1500 can then only be read from the renamed file, after the rename.
// Then the same through a running shipper.
func TestRotationWhileReading(t *testing.T) {
	mid := masterDir(t)
	writeFile(t, logPath(mid, 0), lines(1, 1000))
	rd := newReader(mid, KindMaster, Position{})
	defer rd.Close()
	var got strings.Builder
	rotated := false
	emit := func(l Line) error {
		got.Write(l.Raw)
		got.WriteByte('\n')
		if l.Version == 10 && !rotated {
			rotated = true
			appendFile(t, logPath(mid, 0), lines(1001, 1500))
			if err := os.Rename(logPath(mid, 0), logPath(mid, 1)); err != nil {
				t.Fatal(err)
			}
			writeFile(t, logPath(mid, 0), lines(1501, 1600))
		}
		return nil
	}
	if err := rd.Read(emit); err != nil {
		t.Fatal(err)
	}
	if !rotated || got.String() != lines(1, 1600) {
		t.Fatalf("rotated %v; read %s, want lines 1..1600 once each, in order", rotated, summary(got.String()))
	}

	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 20000))
	r := startShipper(t, n, dir, KindMaster)
	// The hourly rotation: rename, then the master creates a new live file at its next change.
	if err := os.Rename(logPath(dir, 0), logPath(dir, 1)); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath(dir, 1), "") // no-op: the renamed file is complete
	writeFile(t, logPath(dir, 0), lines(20001, 20500))
	waitShipped(t, r, 1, 20500)
	// And again, with the renamed file still growing until the rename (written before it).
	appendFile(t, logPath(dir, 0), lines(20501, 20600))
	if err := os.Rename(logPath(dir, 1), logPath(dir, 2)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(logPath(dir, 0), logPath(dir, 1)); err != nil {
		t.Fatal(err)
	}
	waitShipped(t, r, 1, 20600)
	writeFile(t, logPath(dir, 0), lines(20601, 20700))
	waitShipped(t, r, 1, 20700)
	checkStream(t, n, map[uint64]string{1: lines(1, 20700)})
}

func TestRestartResumesFromStream(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 500))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 500)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// The master restarts and appends to the same live file.
	appendFile(t, logPath(dir, 0), lines(501, 800))
	r = startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 800)
	checkStream(t, n, map[uint64]string{1: lines(1, 800)})
}

func TestFileReplacedUnderSameName(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 300))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 300)
	// A new file (new inode) that repeats part of the history and continues it.
	tmp := filepath.Join(dir, "new.tmp")
	writeFile(t, tmp, lines(200, 450))
	if err := os.Rename(tmp, logPath(dir, 0)); err != nil {
		t.Fatal(err)
	}
	waitShipped(t, r, 1, 450)
	checkStream(t, n, map[uint64]string{1: lines(1, 450)})
}

func TestVersionBackwardsStartsTimeline(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 1000))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 1000)
	// The master was started from metadata of version 500 and appends to the same file.
	appendFile(t, logPath(dir, 0), linesAt(500, 700, 1800000000))
	waitShipped(t, r, 2, 700)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// Restart in the middle of the new timeline: it continues timeline 2, not 1.
	appendFile(t, logPath(dir, 0), linesAt(701, 750, 1800000000))
	r = startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 2, 750)
	checkStream(t, n, map[uint64]string{1: lines(1, 1000), 2: linesAt(500, 750, 1800000000)})
	tls, err := stream.Timelines(context.Background(), n.js, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(tls) != 2 || tls[1].Parent != 1 || tls[1].FirstVersion != 500 || tls[0].LastVersion != 1000 {
		t.Fatalf("got timelines %+v", tls)
	}
}

func TestNewDataDirWithOlderHistoryForks(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 400))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 400)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// A master restored to version 300 in a fresh directory: only new-history files.
	dir2 := masterDir(t)
	writeFile(t, logPath(dir2, 0), linesAt(300, 350, 1800000000))
	r = startShipper(t, n, dir2, KindMaster)
	waitShipped(t, r, 2, 350)
	checkStream(t, n, map[uint64]string{1: lines(1, 400), 2: linesAt(300, 350, 1800000000)})
}

func TestRotatedAwayIsAGap(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 100))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 100)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// While the shipper was down, lines 101..199 were rotated away.
	if err := os.Remove(logPath(dir, 0)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, logPath(dir, 0), lines(200, 300))
	r = startShipper(t, n, dir, KindMaster)
	err := r.waitErr(t)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Want != 101 || !strings.Contains(err.Error(), "200") {
		t.Fatalf("got %v, want a gap error for version 101 naming where the files start", err)
	}
	checkStream(t, n, map[uint64]string{1: lines(1, 100)})
}

func TestJumpInsideFileIsAGap(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 50)+lines(52, 60))
	r := startShipper(t, n, dir, KindMaster)
	err := r.waitErr(t)
	if !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "changelog.0.mfs line 51") {
		t.Fatalf("got %v, want a gap naming changelog.0.mfs line 51", err)
	}
	checkStream(t, n, map[uint64]string{1: lines(1, 50)})
}

func TestMalformedLineNamesFileAndLine(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 5)+"six: 1700000000|IDLE()\n")
	r := startShipper(t, n, dir, KindMaster)
	err := r.waitErr(t)
	if err == nil || !strings.Contains(err.Error(), "changelog.0.mfs line 6") {
		t.Fatalf("got %v, want an error naming changelog.0.mfs line 6", err)
	}
	checkStream(t, n, map[uint64]string{1: lines(1, 5)})
}

// TestBadLineStopsShipperAfterWhatPrecedes: a line that is not what MooseFS writes (here a NUL
// byte, as once reached a standby and stopped it for good, or an operation no mfsmaster knows)
// is never shipped; the lines before it are, and the error names the file and the line.
func TestBadLineStopsShipperAfterWhatPrecedes(t *testing.T) {
	for _, tc := range []struct{ name, bad, want string }{
		{"nul", "41: 1700000000|CREATE(1,a\x00b,1,420,18,0,0,0):42\n", "changelog.0.mfs line 41: NUL byte at byte 25"},
		{"op", "41: 1700000000|CREATE_X(1)\n", `changelog.0.mfs line 41: unknown operation "CREATE_X"`},
		{"glued", "41: 1700000000|CREATE(1,a,1,420,18,0,0,0):4260001: 1700000000|IDLE()\n", "changelog.0.mfs line 41: CREATE: end of line expected at byte 49"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNATS(t)
			dir := masterDir(t)
			writeFile(t, logPath(dir, 0), lines(1, 40)+tc.bad+lines(42, 50))
			r := startShipper(t, n, dir, KindMaster)
			err := r.waitErr(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, changelog.ErrSyntax) || !errors.Is(err, ErrUnshippable) {
				t.Fatalf("got %v, want an unshippable syntax error containing %q", err, tc.want)
			}
			checkStream(t, n, map[uint64]string{1: lines(1, 40)})
		})
	}
	t.Run("appended", func(t *testing.T) { // to the live file, while shipping
		n := startNATS(t)
		dir := masterDir(t)
		writeFile(t, logPath(dir, 0), lines(1, 40))
		r := startShipper(t, n, dir, KindMaster)
		waitShipped(t, r, 1, 40)
		appendFile(t, logPath(dir, 0), lines(41, 45)+"46: 1700000000|SETPATH(5,a\x00)\n"+lines(47, 50))
		err := r.waitErr(t)
		if !errors.Is(err, ErrUnshippable) || !strings.Contains(err.Error(), "changelog.0.mfs line 46: NUL byte") {
			t.Fatalf("got %v, want an error naming changelog.0.mfs line 46", err)
		}
		checkStream(t, n, map[uint64]string{1: lines(1, 45)})
	})
}

// TestShipsMooseFS4Lines: 4.x lines, nested parentheses included, ship like any other.
func TestShipsMooseFS4Lines(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	four := "3: 1700000000|SCSET(sc_two,1,1,my class%2C %28desc%29,0,0,C(0:0:0),K(2:0:255),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,FF,FF):10\n" +
		"4: 1700000000|SESADD(#6597591522451432279,1,2,0022,0,0,999,999,0xFFFF,0,4294967295,0x00000000,167772161,/mnt/mfs):1\n" +
		"5: 1700000030|IDLE()\n"
	writeFile(t, logPath(dir, 0), lines(1, 2)+four+lines(6, 10))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 10)
	checkStream(t, n, map[uint64]string{1: lines(1, 2) + four + lines(6, 10)})
}

func TestNATSOutageLosesNothing(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 1000))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 1000)
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	appendFile(t, logPath(dir, 0), lines(1001, 3000))
	time.Sleep(300 * time.Millisecond) // the shipper tries and fails meanwhile
	n.start(t)
	waitShipped(t, r, 1, 3000)
	checkStream(t, n, map[uint64]string{1: lines(1, 3000)})
}

func TestSecondWriterStopsShipper(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 100))
	r := startShipper(t, n, dir, KindMaster)
	waitShipped(t, r, 1, 100)
	// Another writer appends (as a new master's shipper would after a failover).
	info := stream.BatchInfo{Timeline: 1, FirstVersion: 101, LastVersion: 101, Lines: 1}
	if _, err := n.js.PublishMsg(context.Background(), &nats.Msg{Subject: stream.Subject(testCluster, 1), Header: info.Header(), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath(dir, 0), lines(101, 110))
	err := r.waitErr(t)
	if !errors.Is(err, ErrNotSoleWriter) {
		t.Fatalf("got %v, want ErrNotSoleWriter", err)
	}
}

func TestMetaloggerDirectory(t *testing.T) {
	n := startNATS(t)
	dir := t.TempDir()
	// A metalogger's copies of the master's changelogs overlap its own files.
	writeFile(t, filepath.Join(dir, "changelog_ml_back.1.mfs"), lines(1, 300))
	writeFile(t, filepath.Join(dir, "changelog_ml_back.0.mfs"), lines(301, 500))
	writeFile(t, filepath.Join(dir, "changelog_ml.1.mfs"), lines(450, 800))
	writeFile(t, filepath.Join(dir, "changelog_ml.0.mfs"), lines(801, 900))
	k, err := DetectKind(dir)
	if err != nil || k != KindMetalogger {
		t.Fatalf("DetectKind = %v, %v; want metalogger", k, err)
	}
	r := startShipper(t, n, dir, 0)
	waitShipped(t, r, 1, 900)
	appendFile(t, filepath.Join(dir, "changelog_ml.0.mfs"), lines(901, 950))
	waitShipped(t, r, 1, 950)
	checkStream(t, n, map[uint64]string{1: lines(1, 950)})
}

func TestDuplicatePublishIsDropped(t *testing.T) {
	n := startNATS(t)
	ctx := context.Background()
	st, err := ensureStream(ctx, n.js, testCluster, 1)
	if err != nil {
		t.Fatal(err)
	}
	info := stream.BatchInfo{Timeline: 1, FirstVersion: 1, LastVersion: 2, Lines: 2}
	pub := func(expect uint64) (*jetstream.PubAck, error) {
		return n.js.PublishMsg(ctx, &nats.Msg{Subject: stream.Subject(testCluster, 1), Header: info.Header(), Data: []byte("x")},
			jetstream.WithMsgID(stream.MsgID(1, 1, 2)), jetstream.WithExpectLastSequence(expect))
	}
	if _, err := pub(0); err != nil {
		t.Fatal(err)
	}
	// A shipper restarted after a crash republishes the batch against the tail it read.
	ack, err := pub(1)
	if err != nil || !ack.Duplicate {
		t.Fatalf("republish: ack %+v, err %v; want a duplicate ack", ack, err)
	}
	si, err := st.Info(ctx)
	if err != nil || si.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages (err %v), want 1", si.State.Msgs, err)
	}
}

func TestMetaIDFromSetMetaIDLine(t *testing.T) {
	for line, want := range map[string]uint64{
		"1: 1795591635|SETMETAID(7712007351827270746)":          7712007351827270746,
		"2: 1795591635|CREATE(1,SETMETAID(5),1,420,18,0,0,0):2": 0,
		"3: 1795591635|SETMETAID(x)":                            0,
	} {
		got, ok := setMetaID([]byte(line))
		if got != want || ok != (want != 0) {
			t.Errorf("setMetaID(%q) = %d, %v; want %d", line, got, ok, want)
		}
	}
}

func TestShipperNeedsSigningKey(t *testing.T) {
	n := startNATS(t)
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Cluster = masterDir(t), testCluster
	_, err := New(cfg, n.js, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "SIGNING_KEY") || !strings.Contains(err.Error(), "mfsha init") {
		t.Fatalf("shipper without a signing key: %v; want an error naming SIGNING_KEY and mfsha init", err)
	}
}
