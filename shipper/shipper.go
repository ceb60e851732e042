package shipper

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/liveness"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// Config of a Shipper. Zero fields take the defaults of DefaultConfig.
type Config struct {
	DataDir  string // MooseFS DATA_PATH of a master or metalogger
	Kind     Kind   // 0: detect from the files
	Cluster  string // names the stream (see package stream)
	Replicas int    // stream and bucket replicas: 1 standalone, 3 in a NATS cluster
	Source   string // who writes, for the Mfsha-Source header

	MaxBatchBytes int // lines per message before compression
	Window        int // batches in flight before waiting for acknowledgements
	Level         zstd.EncoderLevel
	Poll          time.Duration // re-check the files this often even without a file event
	// BatchDelay is the least time between two reads the changelog's file events start: the
	// lines a master writes meanwhile go out in one batch. 0 reads on every event (one per
	// line mfsmaster writes), which costs the master's host a core's percents at 10,000
	// lines/s (see coalesce.go).
	BatchDelay time.Duration
	RetryWait  time.Duration // wait between attempts while NATS is unreachable

	// Signer signs every batch (see stream.SignedHeader); required: readers refuse what is
	// unsigned. Snapshots are signed by the SnapshotStore (snapshot.Store.WithSigner).
	Signer *sign.Signer
	// Trusted, when set, holds further keys (TRUSTED_KEYS) whose batch may end the stream
	// when shipping resumes: the previous key during a rotation. The Signer's own key is
	// always trusted.
	Trusted *sign.Verifier
	// Epoch, when set, gives the fencing epoch put into every batch's headers.
	Epoch func() uint64
	// Snapshots, when set, receives every new metadata snapshot; Retention > 0 then prunes
	// snapshots and the stream together (see applyRetention).
	Snapshots    SnapshotStore
	Retention    time.Duration
	SnapshotPoll time.Duration // re-check the snapshot files this often without a file event

	// OnAck, when set, is called in order for every batch the stream acknowledged, from the
	// shipping goroutine: it must not block.
	OnAck func(stream.BatchInfo)
	// Live, when set, receives a tick every turn of the shipping loop, at least every Poll
	// (or RetryWait while NATS is unreachable), for /health.
	Live *liveness.Monitor
}

// DefaultConfig holds the defaults.
func DefaultConfig() Config {
	return Config{Replicas: 1, MaxBatchBytes: 1 << 20, Window: 32, Level: zstd.SpeedFastest,
		Poll: time.Second, BatchDelay: 100 * time.Millisecond, RetryWait: time.Second, Retention: 72 * time.Hour, SnapshotPoll: 10 * time.Second}
}

// Validate checks the fields and their relations; errors name the setting.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("DATA_PATH: not set")
	case c.Signer == nil:
		return errors.New("SIGNING_KEY: not set: every batch must be signed with the cluster's key (make one with mfsha init)")
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("REPLICAS = %d: want 1 to 5", c.Replicas)
	case c.MaxBatchBytes < 4<<10 || c.MaxBatchBytes > maxMsgBytes/2:
		return fmt.Errorf("BATCH_BYTES = %d: want 4096 to %d", c.MaxBatchBytes, maxMsgBytes/2)
	case c.Window < 1:
		return fmt.Errorf("WINDOW = %d: want at least 1", c.Window)
	case c.Poll <= 0:
		return fmt.Errorf("POLL = %v: want more than 0", c.Poll)
	case c.BatchDelay < 0 || c.BatchDelay > time.Second:
		return fmt.Errorf("BATCH_DELAY = %v: want 0 to 1s", c.BatchDelay)
	case c.Retention < 0:
		return fmt.Errorf("RETENTION = %v: want 0 (keep everything) or more", c.Retention)
	case c.Retention > 0 && c.Retention < time.Hour:
		return fmt.Errorf("RETENTION = %v: shorter than MooseFS's hourly snapshot: no snapshot would stay restorable", c.Retention)
	}
	return nil
}

// loopShip names the shipping loop in Config.Live.
const loopShip = "ship"

// Shipper publishes the changelog of one data directory. Create it with New; Run does the work.
type Shipper struct {
	cfg     Config
	js      jetstream.JetStream
	log     *slog.Logger
	m       *Metrics
	enc     *zstd.Encoder
	metaID  atomic.Uint64
	shipped atomic.Pointer[Position] // last acknowledged position, for the snapshot uploader

	rawTotal, sentTotal atomic.Uint64

	// segs: where each timeline shipped in this run began, in order (see timelineOf).
	segsMu sync.Mutex
	segs   []segment

	newestRead atomic.Uint64 // version of the newest line read from the files

	// snapWaits is the version of a snapshot file waiting for its line to be shipped (0:
	// none); acked wakes the uploader through snapWake once it is, instead of leaving it to
	// SnapshotPoll. Right after a new timeline starts (a point-in-time restore served) no
	// standby can follow, nor promote, until that timeline's first snapshot is uploaded.
	snapWaits atomic.Uint64
	snapWake  chan struct{}
	// wake starts a read of the changelog files: file events (at most one per BatchDelay,
	// see forwardEvents) and ReadNow send to it.
	wake chan struct{}

	tailKeys *sign.Verifier // the batch shipping resumes after must be signed by one of these
}

// New checks cfg (filling defaults) and detects the kind of data directory.
func New(cfg Config, js jetstream.JetStream, log *slog.Logger, m *Metrics) (*Shipper, error) {
	def := DefaultConfig()
	if cfg.Replicas == 0 {
		cfg.Replicas = def.Replicas
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = def.MaxBatchBytes
	}
	if cfg.Window == 0 {
		cfg.Window = def.Window
	}
	if cfg.Level == 0 {
		cfg.Level = def.Level
	}
	if cfg.Poll == 0 {
		cfg.Poll = def.Poll
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = def.RetryWait
	}
	if cfg.SnapshotPoll == 0 {
		cfg.SnapshotPoll = def.SnapshotPoll
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == 0 {
		k, err := DetectKind(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.Kind = k
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.Level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	keys := []ed25519.PublicKey{cfg.Signer.Public()}
	if cfg.Trusted != nil {
		keys = append(keys, cfg.Trusted.Keys()...)
	}
	tailKeys, err := sign.NewVerifier(keys...)
	if err != nil {
		return nil, fmt.Errorf("TRUSTED_KEYS: %w", err)
	}
	return &Shipper{cfg: cfg, js: js, log: log, m: m, enc: enc, tailKeys: tailKeys, snapWake: make(chan struct{}, 1), wake: make(chan struct{}, 1)}, nil
}

// ReadNow makes the shipper read the changelog files at once, without waiting for the
// BatchDelay after the last file event: for a drain, when the master has stopped writing.
func (s *Shipper) ReadNow() { notify(s.wake) }

// Kind is the detected or configured kind of data directory.
func (s *Shipper) Kind() Kind { return s.cfg.Kind }

// Run ships until ctx ends (returning nil) or shipping cannot go on without losing or
// duplicating lines: a gap (ErrGap), another writer (ErrNotSoleWriter) or an unreadable
// changelog file. While NATS is unreachable it retries; the files are the buffer.
func (s *Shipper) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.cfg.DataDir, err)
	}
	defer w.Close()
	if err := w.Add(s.cfg.DataDir); err != nil {
		return fmt.Errorf("watch %s: %w", s.cfg.DataDir, err)
	}
	go forwardEvents(ctx, w, s.wake, s.snapWake, s.cfg.Kind.SnapshotNames(), s.cfg.BatchDelay, s.log)
	if s.cfg.Snapshots != nil {
		uctx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() { defer close(stopped); s.uploadLoop(uctx, s.snapWake) }()
		defer func() { cancel(); <-stopped }()
	}
	defer s.cfg.Live.Done(loopShip)
	for {
		s.cfg.Live.Tick(loopShip)
		s.refreshMetaID()
		err := s.session(ctx, s.wake)
		if ctx.Err() != nil {
			return nil
		}
		var fe *fileError
		switch {
		case errors.Is(err, ErrGap):
			s.m.Errors.WithLabelValues("gap").Inc()
			s.m.Gap.Set(1)
			return err
		case errors.Is(err, ErrNotSoleWriter):
			s.m.Errors.WithLabelValues("fenced").Inc()
			return err
		case errors.Is(err, ErrUnshippable):
			s.m.Errors.WithLabelValues("line").Inc()
			return err
		case errors.As(err, &fe):
			s.m.Errors.WithLabelValues("file").Inc()
			return fe.err
		case errors.Is(err, errResync):
			continue
		}
		s.m.Errors.WithLabelValues("nats").Inc()
		s.log.Warn("shipping interrupted; resuming from the stream's last acknowledged line", "err", err, "retry_in", s.cfg.RetryWait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.RetryWait):
		}
	}
}

// publishError marks errors of publishing raised inside the reader's callback.
type publishError struct{ err error }

func (e *publishError) Error() string { return e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

// segment is where shipping on a timeline began in this run.
type segment struct{ timeline, from uint64 }

// fileError marks errors of the changelog files, which retrying cannot cure.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// session resumes from the stream's tail and ships until an error.
func (s *Shipper) session(ctx context.Context, wake <-chan struct{}) (err error) {
	st, err := ensureStream(ctx, s.js, s.cfg.Cluster, s.cfg.Replicas)
	if err != nil {
		return err
	}
	t, err := readTail(ctx, st, s.tailKeys)
	if err != nil {
		return err
	}
	pos := t.position()
	s.shipped.Store(&pos)
	s.log.Info("resuming", "dir", s.cfg.DataDir, "kind", s.cfg.Kind, "timeline", pos.Timeline, "next_version", pos.Next, "stream_seq", t.seq)
	if t.seq > 0 {
		s.m.LastShippedVersion.Set(float64(t.info.LastVersion))
		s.m.Timeline.Set(float64(t.info.Timeline))
	}

	rd := newReader(s.cfg.DataDir, s.cfg.Kind, pos)
	defer rd.Close()
	pipe := newPipeline(ctx, s, newPublisher(s.js, s.cfg.Signer, s.cfg.Cluster, t.seq, s.cfg.Window, s.acked))
	defer pipe.close()

	timeline := pos.Timeline
	b := pipe.batch()
	flush := func() error { // hands the batch being filled to the pipeline
		if b.info.Lines == 0 {
			return pipe.failed()
		}
		err := pipe.submit(b)
		b = pipe.batch()
		return err
	}
	emit := func(l Line) error {
		if !b.fits(l, s.cfg.MaxBatchBytes) {
			if err := flush(); err != nil {
				return &publishError{err: err}
			}
		}
		if l.Timeline != timeline {
			if l.Parent == 0 {
				s.log.Info("starting timeline 1", "first_version", l.Version)
			} else {
				s.log.Warn("versions went backwards: new timeline", "timeline", l.Timeline, "parent", l.Parent, "first_version", l.Version)
			}
			timeline = l.Timeline
		}
		if id, ok := setMetaID(l.Raw); ok {
			s.metaID.Store(id)
		}
		b.add(l)
		s.newestRead.Store(l.Version)
		s.m.NewestFileVersion.Set(float64(l.Version))
		return nil
	}
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	var lastRead int64
	for {
		if err := rd.Read(emit); err != nil {
			if ferr := flush(); ferr == nil {
				_ = pipe.flush()
			}
			if errors.Is(err, ErrGap) || errors.Is(err, ErrNotSoleWriter) || errors.Is(err, errResync) {
				return err
			}
			if isPublishErr(err) {
				return err
			}
			return &fileError{err: err}
		}
		s.cfg.Live.Tick(loopShip)
		s.m.BytesRead.Add(float64(rd.bytesRead - lastRead))
		lastRead = rd.bytesRead
		if err := flush(); err != nil {
			return err
		}
		if err := pipe.flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-poll.C:
		}
	}
}

// isPublishErr tells errors raised by publishing inside the reader's callback from file errors.
func isPublishErr(err error) bool {
	var pe *publishError
	return errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// acked records an acknowledged batch.
func (s *Shipper) acked(b sealed, _ *jetstream.PubAck) {
	i := b.info
	pos := Position{Timeline: i.Timeline, Next: i.LastVersion + 1, PrevHash: i.LastLineHash}
	s.shipped.Store(&pos)
	s.m.LastShippedVersion.Set(float64(i.LastVersion))
	s.m.LastShippedTime.Set(float64(i.LastTime))
	s.m.Timeline.Set(float64(i.Timeline))
	s.m.LinesShipped.Add(float64(i.Lines))
	s.m.Batches.Inc()
	s.m.BytesRaw.Add(float64(b.rawLen))
	s.m.BytesSent.Add(float64(len(b.payload)))
	s.m.Gap.Set(0)
	if newest := s.newestRead.Load(); i.LastVersion >= newest {
		s.m.LagVersions.Set(0)
		s.m.LagSeconds.Set(0)
	} else {
		// The next line waiting was read after this batch's first: a bound from above.
		s.m.LagVersions.Set(float64(newest - i.LastVersion))
		s.m.LagSeconds.Set(time.Since(b.readAt).Seconds())
	}
	if w := s.snapWaits.Load(); w != 0 && w <= i.LastVersion {
		select {
		case s.snapWake <- struct{}{}:
		default:
		}
	}
	s.segsMu.Lock()
	if len(s.segs) == 0 || s.segs[len(s.segs)-1].timeline != i.Timeline {
		s.segs = append(s.segs, segment{timeline: i.Timeline, from: i.FirstVersion})
	}
	s.segsMu.Unlock()
	if s.cfg.OnAck != nil {
		s.cfg.OnAck(i)
	}
	s.rawTotal.Add(uint64(b.rawLen))
	s.sentTotal.Add(uint64(len(b.payload)))
	if sent := s.sentTotal.Load(); sent > 0 {
		s.m.CompressionRatio.Set(float64(s.rawTotal.Load()) / float64(sent))
	}
}

// Shipped is the last position acknowledged by the stream (zero before the first).
func (s *Shipper) Shipped() Position {
	if p := s.shipped.Load(); p != nil {
		return *p
	}
	return Position{}
}

// Totals are the changelog bytes acknowledged by the stream, before and after compression.
func (s *Shipper) Totals() (raw, sent uint64) { return s.rawTotal.Load(), s.sentTotal.Load() }

// setMetaID recognizes `V: TS|SETMETAID(id)`, the line that names a new file system.
func setMetaID(line []byte) (uint64, bool) {
	const op = "|SETMETAID("
	i := bytes.Index(line, []byte(op))
	if i < 0 || !bytes.HasSuffix(line, []byte(")")) {
		return 0, false
	}
	id, err := strconv.ParseUint(string(line[i+len(op):len(line)-1]), 10, 64)
	return id, err == nil
}

// refreshMetaID reads the metaid from the newest snapshot file, if one is valid.
func (s *Shipper) refreshMetaID() {
	for _, n := range s.cfg.Kind.SnapshotNames() {
		h, err := metafile.Check(filepath.Join(s.cfg.DataDir, n))
		if err == nil && h.MetaID != 0 {
			s.metaID.Store(h.MetaID)
			return
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Debug("no metaid from snapshot", "file", n, "err", err)
		}
	}
}
