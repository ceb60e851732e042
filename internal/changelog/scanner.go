package changelog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds a line; a longer one is an error, not a silent truncation. MooseFS's own
// bound is 200,000 bytes after the version (MAXLOGLINESIZE in mfsmaster/changelog.c).
const MaxLineBytes = 1 << 20

// Scanner reads the whole lines of a changelog file in order, parsing each one, and names the
// file and the 1-based line number in its errors.
//
// A last line without '\n' is not returned: Scan returns false and Err is a *LineError wrapping
// ErrPartialLine, so that a caller following a live file can wait. That error alone is not
// sticky: calling Scan again reads on from where the reader stopped and returns the line once
// its '\n' has arrived. Likewise, after a clean end of input (Err nil) Scan may be called again
// to pick up lines appended since. Every other error is final.
//
// A Scanner is not safe for concurrent use.
type Scanner struct {
	br   *bufio.Reader
	name string
	n    int   // lines returned
	off  int64 // bytes of whole lines returned, '\n' included
	buf  []byte
	done bool // buf holds the last returned line, to be dropped by the next Scan
	line Line
	err  error
}

// NewScanner reads r, naming it name in errors (usually the file's base name).
func NewScanner(r io.Reader, name string) *Scanner {
	return &Scanner{br: bufio.NewReaderSize(r, 64<<10), name: name}
}

// Scan advances to the next whole line and parses it. It returns false at the end of the input
// or on an error; Err tells which.
func (s *Scanner) Scan() bool {
	if s.err != nil && !errors.Is(s.err, ErrPartialLine) {
		return false
	}
	s.err = nil
	if s.done {
		s.buf, s.done = s.buf[:0], false
	}
	for {
		b, err := s.br.ReadSlice('\n')
		s.buf = append(s.buf, b...)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if len(s.buf) > MaxLineBytes {
				s.err = &LineError{File: s.name, Line: s.n + 1, Err: fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLineBytes)}
				return false
			}
		case errors.Is(err, io.EOF):
			if len(s.buf) > 0 {
				s.err = &LineError{File: s.name, Line: s.n + 1, Err: ErrPartialLine}
			}
			return false
		default:
			s.err = fmt.Errorf("read %s after line %d: %w", s.name, s.n, err)
			return false
		}
	}
	if len(s.buf) > MaxLineBytes+1 {
		s.err = &LineError{File: s.name, Line: s.n + 1, Err: fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLineBytes)}
		return false
	}
	s.n++
	s.done = true
	line, err := Parse(s.buf[:len(s.buf)-1])
	if err != nil {
		s.err = &LineError{File: s.name, Line: s.n, Err: err}
		return false
	}
	s.line = line
	s.off += int64(len(s.buf))
	return true
}

// Line is the line returned by the last successful Scan; its strings stay valid.
func (s *Scanner) Line() Line { return s.line }

// Raw is the bytes, without '\n', of the last line read (the bad line after a parse error),
// valid until the next call to Scan; nil before the first line.
func (s *Scanner) Raw() []byte {
	if !s.done {
		return nil
	}
	return s.buf[:len(s.buf)-1]
}

// LineNumber is the 1-based number of the last line read (of the bad line after a parse
// error).
func (s *Scanner) LineNumber() int { return s.n }

// Offset is the number of bytes of the whole lines returned so far, newlines included: where
// the next line starts in the input.
func (s *Scanner) Offset() int64 { return s.off }

// Err is the error that stopped Scan: nil at a clean end of input, a *LineError for a bad,
// too long or partial line, or a read error naming the file.
func (s *Scanner) Err() error { return s.err }
