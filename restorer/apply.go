package restorer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// ErrExists is returned when the output already holds metadata and Force is not set.
var ErrExists = errors.New("metadata file exists (use --force to replace it)")

// Options of Apply.
type Options struct {
	Cluster string
	OutDir  string // metadata.mfs is written here
	Force   bool   // replace an existing OutDir/metadata.mfs
	// Mfsmaster folds (MFSMASTER_BIN); zero: "mfsmaster" found on PATH or in /usr/sbin. A
	// release older than the base metadata's is refused before it runs.
	Mfsmaster moosefs.Mfsmaster
	// WorkDir is where the fold's private work directory is made (and stale ones left by a
	// killed run are removed); empty: beside OutDir, in its parent. It needs room for the
	// snapshot and the result, about twice the metadata's size; OutDir needs room for the
	// result (the old file stays until the new one replaces it).
	WorkDir string
	// FoldUser runs mfsmaster for the fold when mfsha runs as root; empty: DefaultFoldUser.
	FoldUser string
	// Nice is the fold's CPU nice level, 0 to MaxFoldNiceLevel (0: mfsha's own).
	Nice int
	// Verifier holds the trusted public keys (TRUSTED_KEYS); required. The snapshot and every
	// batch read are checked against it before anything reaches mfsmaster.
	Verifier *sign.Verifier
	Progress snapshot.Progress
	Log      *slog.Logger

	check *batchCheck // a standby's own, so that the epoch seen carries over; nil: a new one
}

// Outcome is what was restored.
type Outcome struct {
	Path     string
	Version  uint64  // the restored metadata's version (the next change id)
	LastLine uint64  // the last changelog line applied; 0 if none
	LastTime int64   // its timestamp
	LastHash uint64  // its stream.LineHash
	Lines    int     // lines applied on top of the snapshot
	Fold     FoldRun // what mfsmaster's fold cost; zero when no line was folded
}

// Apply carries out a plan: it downloads and verifies the snapshot, takes the changelog lines
// up to the target from the stream (checking that none is missing or corrupt), folds them with
// `mfsmaster -a restore` in a private directory, checks the resulting version, and installs
// OutDir/metadata.mfs atomically. The snapshot and every batch must be signed by a key of
// o.Verifier (and batches pass the epoch check, see batchCheck): anything else is refused
// with an error naming the object or the stream message, before mfsmaster runs. On any error
// OutDir is left as it was.
func Apply(ctx context.Context, js jetstream.JetStream, store *snapshot.Store, p Plan, o Options) (Outcome, error) {
	chk := o.check
	if chk == nil {
		var err error
		if chk, err = newBatchCheck(o.Verifier); err != nil {
			return Outcome{}, err
		}
	}
	if p.Snapshot != nil {
		store = store.WithVerifier(chk.v)
	}
	out := filepath.Join(o.OutDir, "metadata.mfs")
	// Lstat: a symbolic link there, even a dangling one, is something to replace.
	if _, err := os.Lstat(out); err == nil && !o.Force {
		return Outcome{}, fmt.Errorf("%s: %w", out, ErrExists)
	}
	u, err := LookupFoldUser(o.FoldUser)
	if err != nil {
		return Outcome{}, err
	}
	master := o.Mfsmaster
	if master.Path == "" {
		if master, err = moosefs.FindMfsmaster(ctx, ""); err != nil {
			return Outcome{}, err
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return Outcome{}, fmt.Errorf("restore: %w", err)
	}
	root := o.WorkDir
	if root == "" {
		abs, err := filepath.Abs(o.OutDir)
		if err != nil {
			return Outcome{}, fmt.Errorf("restore: %w", err)
		}
		root = filepath.Dir(abs)
	}
	ws, err := newWorkspace(root, o.Log)
	if err != nil {
		return Outcome{}, err
	}
	defer ws.Close()
	work := ws.dir
	data := filepath.Join(work, "data")
	if err := prepareData(data, u); err != nil {
		return Outcome{}, err
	}
	base := filepath.Join(data, "metadata.mfs")
	// The base and the lines are independent: fetch them at the same time.
	baseErr := make(chan error, 1)
	go func() {
		switch {
		case p.BaseFile != "":
			err := linkOrCopy(p.BaseFile, base)
			if err == nil {
				err = giveBase(base, true, u)
			}
			baseErr <- err
		case p.Snapshot != nil:
			_, err := store.DownloadFile(ctx, p.Snapshot.Name, base, o.Progress)
			if err == nil {
				err = giveBase(base, false, u)
			}
			baseErr <- err
		default:
			if err := os.WriteFile(base, []byte(metafile.NewSignature), 0o644); err != nil {
				baseErr <- fmt.Errorf("restore: %w", err)
				return
			}
			baseErr <- nil
		}
	}()
	var res Outcome
	if p.LinesFile != "" {
		res, err = copyLines(p.LinesFile, p.From, p.To, filepath.Join(data, "changelog.0.mfs"))
	} else {
		res, err = writeLines(ctx, js, chk, o.Cluster, p, filepath.Join(data, "changelog.0.mfs"))
	}
	if berr := <-baseErr; berr != nil {
		return Outcome{}, berr
	}
	if err != nil {
		return Outcome{}, err
	}
	// An older mfsmaster refuses newer metadata only in its log ("stored by newer version")
	// or fails on the first line it cannot parse: name both releases first.
	if err := master.CheckFold(base); err != nil {
		return Outcome{}, fmt.Errorf("restore: %w", err)
	}
	// An empty file system says nothing of the release: then the lines do.
	if h, err := metafile.Check(base); err == nil && h.New && p.From <= p.To {
		if err := master.CheckLines(filepath.Join(data, "changelog.0.mfs")); err != nil {
			return Outcome{}, fmt.Errorf("restore: %w", err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(data, "changelog.0.mfs"), u.UID, u.GID); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Outcome{}, fmt.Errorf("restore: %w", err)
		}
	}
	res.Version = p.From
	if res.Lines > 0 {
		res.Version = res.LastLine + 1
		if res.Fold, err = fold(ctx, master.Path, work, data, u, o.Nice); err != nil {
			return Outcome{}, err
		}
	}
	h, err := metafile.Check(base)
	if err != nil {
		return Outcome{}, fmt.Errorf("restored metadata: %w", err)
	}
	// mfsmaster skips a changelog it cannot use and still exits 0: trust only the header.
	if h.Version != res.Version {
		// The work directory goes with this return: quote mfsmaster's own words.
		log, _ := os.ReadFile(filepath.Join(work, "mfsmaster.log"))
		return Outcome{}, fmt.Errorf("restored metadata has version %d, want %d: mfsmaster did not apply every line; it said:\n%s", h.Version, res.Version, tailOf(log))
	}
	if err := install(base, out, u); err != nil {
		return Outcome{}, err
	}
	res.Path = out
	return res, nil
}

// writeLines writes lines From..To of the plan's timeline (for a time target: up to the last
// line at or before it) to a new file at path; see streamLines.
func writeLines(ctx context.Context, js jetstream.JetStream, chk *batchCheck, cluster string, p Plan, path string) (Outcome, error) {
	f, err := os.Create(path)
	if err != nil {
		return Outcome{}, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	res, err := streamLines(ctx, js, chk, cluster, p, w)
	if err != nil {
		return res, err
	}
	return res, finish(w, path)
}

// streamLines writes lines From..To of the plan's timeline (for a time target: up to the last
// line at or before it) to w, each checked: from a batch that passes chk (signature, epoch),
// parseable, contiguous, with a matching checksum. On an error, w has received whole lines
// only, up to the last good one.
func streamLines(ctx context.Context, js jetstream.JetStream, chk *batchCheck, cluster string, p Plan, w io.Writer) (Outcome, error) {
	var res Outcome
	if p.From > p.To {
		return res, nil
	}
	st, err := js.Stream(ctx, stream.StreamName(cluster))
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", stream.StreamName(cluster), err)
	}
	subj := stream.Subject(cluster, p.Timeline.Timeline)
	seq, err := stream.SeekVersion(ctx, st, subj, p.From)
	if err != nil {
		return res, err
	}
	dec, err := stream.NewDecoder()
	if err != nil {
		return res, err
	}
	defer dec.Close()
	limit := int64(-1)
	if !p.Target.Time.IsZero() {
		limit = p.Target.Time.Unix()
	}
	next := p.From
	for next <= p.To {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return res, fmt.Errorf("restore: batch of %s at or after sequence %d (need version %d): %w", subj, seq, next, err)
		}
		seq = m.Sequence + 1
		if err := chk.check(m); err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
		info, body, err := dec.Decode(m.Sequence, m.Header, m.Data)
		if err != nil {
			return res, err
		}
		if info.LastVersion < next {
			continue
		}
		if info.FirstVersion > next {
			if info.BridgedFrom != 0 && info.BridgedFrom <= next {
				return res, fmt.Errorf("restore: %w: versions %d..%d are not in the changelog (MooseFS skipped them at a clean stop); restoring past them needs the snapshot of version %d, and none was chosen at or after it", ErrGap, info.BridgedFrom, info.FirstVersion-1, info.FirstVersion)
			}
			return res, fmt.Errorf("restore: %w: versions %d..%d are missing (stream message %d starts at %d)", ErrGap, next, info.FirstVersion-1, m.Sequence, info.FirstVersion)
		}
		// Only the last line's hash is wanted: take it once per batch, while body is valid.
		var last []byte
		settle := func() {
			if last != nil {
				res.LastHash = stream.LineHash(last)
			}
		}
		for n := 1; len(body) > 0 && next <= p.To; n++ {
			i := bytes.IndexByte(body, '\n')
			line := body[:i]
			body = body[i+1:]
			// The full check before the line reaches mfsmaster (a shipper checks it too,
			// but the stream is only as good as every writer it ever had).
			err := changelog.Check(line)
			v, ts, verr := changelog.ParseVersion(line)
			if err == nil {
				err = verr
			}
			if err != nil {
				settle()
				return res, fmt.Errorf("restore: stream message %d line %d: %w", m.Sequence, n, err)
			}
			if v < next {
				continue
			}
			if v != next {
				settle()
				return res, fmt.Errorf("restore: %w: stream message %d holds version %d where %d was expected", ErrGap, m.Sequence, v, next)
			}
			if limit >= 0 && int64(ts) > limit {
				settle()
				return res, nil
			}
			if _, err := w.Write(line[:len(line)+1]); err != nil { // the line and its '\n'
				settle()
				return res, fmt.Errorf("restore: write: %w", err)
			}
			res.Lines++
			res.LastLine, res.LastTime = v, int64(ts)
			last = line
			next++
		}
		settle()
	}
	return res, nil
}

// copyLines copies lines from..to of a local changelog file to path, checking that they are
// whole, parseable and contiguous.
func copyLines(src string, from, to uint64, path string) (Outcome, error) {
	var res Outcome
	in, err := os.Open(src)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	sc := changelog.NewScanner(in, src)
	next := from
	for next <= to && sc.Scan() {
		v := sc.Line().Version
		if v < next {
			continue
		}
		if v != next {
			return res, fmt.Errorf("restore: %w: %s line %d holds version %d where %d was expected", ErrGap, src, sc.LineNumber(), v, next)
		}
		w.Write(sc.Raw())
		w.WriteByte('\n')
		res.Lines++
		res.LastLine, res.LastTime = v, int64(sc.Line().Time)
		res.LastHash = stream.LineHash(sc.Raw())
		next++
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if next <= to {
		return res, fmt.Errorf("restore: %w: %s ends before version %d (needed up to %d)", ErrGap, src, next, to)
	}
	return res, finish(w, path)
}

func finish(w *bufio.Writer, path string) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("restore: write %s: %w", path, err)
	}
	return nil
}
