// Package moosefs knows the MooseFS releases mfsha works with: their versions, where a
// release's binaries are installed (Dist), which release a binary is (`mfsmaster -v`), and
// which releases can load a metadata file (its section versions).
package moosefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// Version is a MooseFS release number, e.g. 4.59.2.
type Version struct {
	Major, Minor, Patch int
}

// The releases mfsha is tested with.
var (
	V3_0_117 = Version{3, 0, 117} // Debian 12's moosefs-* packages, in /usr
	V4_59_2  = Version{4, 59, 2}  // built from source into /opt/moosefs-4.59.2
)

// ErrVersion is wrapped by every error about a version that cannot be read or does not fit.
var ErrVersion = errors.New("MooseFS version")

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// IsZero reports whether v is unknown.
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or 1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	for _, d := range [...]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

var versionRE = regexp.MustCompile(`^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$`)

// ParseVersion reads "MAJOR.MINOR.PATCH".
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%w %q: want MAJOR.MINOR.PATCH, e.g. 4.59.2", ErrVersion, s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

// FromWire decodes the version as MooseFS sends it (CLTOMA_INFO's first four bytes): major
// (16 bits), minor, then the patch times two (config.h: `#define VERSMIN (117)*2`), all
// big-endian; e.g. 00 03 00 EA is 3.0.117.
func FromWire(b [4]byte) Version {
	return Version{int(b[0])<<8 | int(b[1]), int(b[2]), int(b[3]) >> 1}
}

// binaryVersionRE matches what `mfsmaster -v` (and every MooseFS daemon) prints:
// "version: 4.59.2-1 ; build: 2106".
var binaryVersionRE = regexp.MustCompile(`version: ([0-9]+\.[0-9]+\.[0-9]+)(-[0-9A-Za-z.]+)?`)

// BinaryVersion runs `BIN -v` and returns the release it reports. It is the authority on what
// a binary can fold: a path says nothing about what is installed there.
func BinaryVersion(ctx context.Context, bin string) (Version, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	if err != nil {
		return Version{}, fmt.Errorf("%w of %s: `%s -v`: %v: %q", ErrVersion, bin, bin, err, bytes.TrimSpace(out))
	}
	m := binaryVersionRE.FindSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("%w of %s: `%s -v` printed %q, no \"version: X.Y.Z\"", ErrVersion, bin, bin, bytes.TrimSpace(out))
	}
	return ParseVersion(string(m[1]))
}
