package restorer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/stream"
)

// metaloggerSource reads the live file of a local mfsmetalogger (changelog_ml.0.mfs), the
// standby's second path to the master's changes: lines reach a metalogger within a second,
// whether or not they reached the stream. It remembers how far it read, so each call reads
// only what was appended; a new file (the hourly rotation) is read from its start. It is not
// safe for concurrent use.
type metaloggerSource struct {
	dir string
	ino uint64
	off int64 // bytes of the file already read, whole lines only
	// prev is the last whole line read, to check that the first line merged continues the
	// standby's own history.
	prev []byte
}

// merge appends to w the lines of the metalogger's live file that continue the standby's
// copy: versions next, next+1, ... contiguous, provided the metalogger's line next-1 has the
// hash prevHash (same history). It returns the lines appended, and the version and hash of
// the last one.
func (m *metaloggerSource) merge(next, prevHash uint64, w io.Writer) (n int, last, lastHash uint64, err error) {
	path := filepath.Join(m.dir, "changelog_ml.0.mfs")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, 0, nil // rotated; the next change creates it
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("metalogger: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("metalogger: %w", err)
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	if ino != m.ino || st.Size() < m.off {
		m.ino, m.off, m.prev = ino, 0, nil
	}
	if st.Size() == m.off {
		return 0, 0, 0, nil
	}
	if _, err := f.Seek(m.off, io.SeekStart); err != nil {
		return 0, 0, 0, fmt.Errorf("metalogger: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	lineNo := 0
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, bufio.ErrBufferFull) {
				return n, last, lastHash, nil // a partial line: the metalogger is still writing it
			}
			return n, last, lastHash, fmt.Errorf("metalogger: read %s: %w", path, rerr)
		}
		lineNo++
		m.off += int64(len(line))
		body := bytes.TrimSuffix(line, []byte{'\n'})
		perr := changelog.Check(body) // the full check before the line goes to pending.mfs
		v, _, verr := changelog.ParseVersion(body)
		if perr == nil {
			perr = verr
		}
		if perr != nil {
			return n, last, lastHash, fmt.Errorf("metalogger: %s: the line at byte %d: %w", path, m.off-int64(len(line)), perr)
		}
		prevOK := m.prev != nil && stream.LineHash(m.prev) == prevHash
		m.prev = append(m.prev[:0], body...)
		if v != next || (n == 0 && !prevOK) {
			continue
		}
		if _, err := w.Write(line); err != nil {
			return n, last, lastHash, fmt.Errorf("standby: write: %w", err)
		}
		n++
		next++
		last, lastHash = v, stream.LineHash(body)
		prevHash = lastHash
	}
}
