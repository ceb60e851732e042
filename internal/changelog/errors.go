package changelog

import (
	"errors"
	"fmt"
)

// Sentinel errors; match with errors.Is.
var (
	// ErrSyntax matches every *SyntaxError: a line that is not a MooseFS changelog line.
	ErrSyntax = errors.New("malformed changelog line")
	// ErrPartialLine is what Scanner reports (inside a *LineError) for a last line without
	// '\n': MooseFS may still be writing it. It is not sticky: Scan can be called again once
	// more data is available and resumes with that line.
	ErrPartialLine = errors.New("partial line (no newline yet)")
	// ErrLineTooLong is reported by Scanner for a line longer than MaxLineBytes.
	ErrLineTooLong = errors.New("line too long")
)

// SyntaxError says what is wrong with a line and where. errors.Is(err, ErrSyntax) is true for it.
type SyntaxError struct {
	// Offset is the 0-based byte offset in the line at which the problem was found.
	Offset int
	// Msg says what is wrong, e.g. `version "12a" is not a number` or
	// `bad escape "%G1" at byte 17`; it is the whole of Error().
	Msg string
}

func (e *SyntaxError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

func syntaxErr(off int, format string, args ...any) error {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// LineError is an error at one line of a named changelog file, e.g.
// `changelog.0.mfs line 42: version "x" is not a number`.
type LineError struct {
	File string
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s line %d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the error about the line's content (a *SyntaxError, ErrPartialLine, ...).
func (e *LineError) Unwrap() error { return e.Err }
