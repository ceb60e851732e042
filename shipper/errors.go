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
)

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
