package shipper

import (
	"errors"
	"fmt"
)

// Sentinel errors; match with errors.Is.
var (
	// ErrGap: the lines the stream needs next are in no local file (rotated away, deleted,
	// or never written). The shipper stops instead of skipping ahead.
	ErrGap = errors.New("changelog gap")
	// ErrNotSoleWriter: the stream moved on without this shipper (another shipper appended,
	// or a newer master holds the lease). The shipper stops: it must not append.
	ErrNotSoleWriter = errors.New("another writer appended to the stream")
	// ErrUnshippable: a line in the changelog files cannot be shipped: longer than
	// changelog.MaxLineBytes, or not a line MooseFS writes (changelog.Check: a NUL byte, a
	// cut or glued line, an unknown operation). Everything before it is shipped; nothing
	// after it ever is, so the shipper stops, naming the file and line, as for a gap.
	ErrUnshippable = errors.New("changelog line cannot be shipped")
)

// UnshippableError names the line that cannot be shipped.
type UnshippableError struct {
	File string
	Line int // 1-based
	Err  error
}

func (e *UnshippableError) Error() string {
	return fmt.Sprintf("%s line %d: %v: every line before it is shipped, none after it can be", e.File, e.Line, e.Err)
}

// Is makes errors.Is(err, ErrUnshippable) true.
func (e *UnshippableError) Is(target error) bool { return target == ErrUnshippable }

// Unwrap returns the cause (changelog.ErrLineTooLong, or Check's *changelog.SyntaxError).
func (e *UnshippableError) Unwrap() error { return e.Err }

// GapError names the version that is missing and what the files hold instead.
type GapError struct {
	Timeline uint64
	Want     uint64 // the next version the stream needs
	Detail   string // what was found instead, naming the file
}

func (e *GapError) Error() string {
	return fmt.Sprintf("changelog gap on timeline %d: version %d is needed next but %s", e.Timeline, e.Want, e.Detail)
}

// Unwrap makes errors.Is(err, ErrGap) true.
func (e *GapError) Unwrap() error { return ErrGap }
