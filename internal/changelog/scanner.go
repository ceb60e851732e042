package changelog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// LineError is an error at a line of a named changelog file.
type LineError struct {
	File string
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s line %d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// MaxLineBytes bounds a line; a longer one is an error, not a silent truncation.
const MaxLineBytes = 1 << 20

// Scanner reads whole lines of a changelog file in order. A last line without '\n' is not
// returned: Err reports ErrPartialLine for it, so that a caller following a live file can wait
// for the rest. Scanner is not safe for concurrent use.
type Scanner struct {
	br   *bufio.Reader
	name string
	n    int
	raw  []byte
	line Line
	err  error
}

// NewScanner reads r, naming it name in errors.
func NewScanner(r io.Reader, name string) *Scanner {
	return &Scanner{br: bufio.NewReaderSize(r, 64<<10), name: name}
}

// Scan advances to the next line, parsing it; false at the end or on an error (see Err).
func (s *Scanner) Scan() bool {
	if s.err != nil {
		return false
	}
	b, err := s.br.ReadSlice('\n')
	s.raw = append(s.raw[:0], b...)
	for errors.Is(err, bufio.ErrBufferFull) && len(s.raw) <= MaxLineBytes {
		b, err = s.br.ReadSlice('\n')
		s.raw = append(s.raw, b...)
	}
	switch {
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		s.err = &LineError{File: s.name, Line: s.n + 1, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)}
		return false
	case errors.Is(err, io.EOF):
		if len(s.raw) > 0 {
			s.err = &LineError{File: s.name, Line: s.n + 1, Err: ErrPartialLine}
		}
		return false
	default:
		s.err = fmt.Errorf("read %s: %w", s.name, err)
		return false
	}
	s.n++
	s.raw = s.raw[:len(s.raw)-1]
	s.line, err = Parse(s.raw)
	if err != nil {
		s.err = &LineError{File: s.name, Line: s.n, Err: err}
		return false
	}
	return true
}

// Line is the current line.
func (s *Scanner) Line() Line { return s.line }

// Raw is the current line's bytes without '\n', valid until the next Scan.
func (s *Scanner) Raw() []byte { return s.raw }

// LineNumber is the current line's 1-based number.
func (s *Scanner) LineNumber() int { return s.n }

// Err is the error that stopped Scan, nil at a clean end of input.
func (s *Scanner) Err() error { return s.err }
