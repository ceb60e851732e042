package shipper

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/stream"
)

// fileScan is what one pass over a changelog file learned. Only whole lines count: a trailing
// partial line is ignored (it is still being written).
type fileScan struct {
	lines       int
	first, last uint64 // versions of the first and last whole line; lines == 0: none

	// found: where reading should resume. With a known prevHash that is right after the line
	// (want-1, prevHash), whatever follows it; else the first line of version want. A file whose
	// first line is version want also counts: its predecessor was rotated away.
	found     bool
	foundOff  int64
	foundLine int // 1-based line number of the line at foundOff
	// prevFound: the line (want-1, prevHash) is in this file.
	prevFound bool

	// Start of the file's last run of ascending versions (after its last backward jump).
	segOff     int64
	segLine    int
	segVersion uint64

	// bad is the error of the first malformed line; the scan treats the file as ending
	// before it, so the lines before it can still be shipped and the reader reports it there.
	bad error
}

// scanFile reads path once. When want > 0 it looks for the line of version want whose previous
// line has hash prevHash (see fileScan.found). A malformed line ends the scan (fileScan.bad).
func scanFile(path string, want, prevHash uint64) (fileScan, error) {
	var s fileScan
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, changelog.MaxLineBytes+1) // a longest line and its '\n'
	var off int64
	var prevVer uint64
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Like a malformed line: the lines before it can still be shipped, and the reader
			// stops there with the same error.
			s.bad = tooLong(path, s.lines+1)
			return s, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return s, nil // a partial last line is not a line yet
			}
			return s, fmt.Errorf("read %s: %w", path, err)
		}
		body := line[:len(line)-1]
		v, _, perr := changelog.ParseVersion(body)
		if perr != nil {
			s.bad = fmt.Errorf("%s line %d: %w", path, s.lines+1, perr)
			return s, nil
		}
		s.lines++
		if s.lines == 1 {
			s.first = v
			s.segOff, s.segLine, s.segVersion = off, 1, v
		} else if v <= prevVer {
			s.segOff, s.segLine, s.segVersion = off, s.lines, v
		}
		if want > 0 && !s.found {
			switch {
			case s.prevFound: // the line after ours, whatever its version
				s.found = true
			case v == want && (prevHash == 0 || s.lines == 1):
				s.found = true
			}
			if s.found {
				s.foundOff, s.foundLine = off, s.lines
			}
			if v == want-1 && stream.LineHash(body) == prevHash {
				s.prevFound = true
			}
		}
		s.last = v
		prevVer = v
		off += int64(len(line))
	}
}

// firstVersion reads only the first whole line of a file; ok is false when it has none yet.
func firstVersion(path string) (v uint64, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return 0, false, fmt.Errorf("read %s: %w", path, err)
		}
		// A long first line: its prefix gives the version; whether it is whole, and not too
		// long, is the reader's business.
	}
	v, _, err = changelog.ParseVersion(bytes.TrimSuffix(line, []byte{'\n'}))
	if err != nil {
		return 0, false, fmt.Errorf("%s line 1: %w", path, err)
	}
	return v, true, nil
}

// tooLong is the error of a line longer than changelog.MaxLineBytes at path's 1-based line n.
func tooLong(path string, n int) error {
	return &UnshippableError{File: path, Line: n, Err: fmt.Errorf("%w: more than %d bytes", changelog.ErrLineTooLong, changelog.MaxLineBytes)}
}
