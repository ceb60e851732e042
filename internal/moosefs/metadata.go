package moosefs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// A metadata file starts "MFSM 2.0" in 3.0.117 and in 4.59.2 alike (mfsmaster/metadata.c:
// `MFSSIGNATURE "M 2.0"`); what differs is its sections. Each is "NAME X.Y" + u64 length, and
// X.Y is the format of that section ('0'+nibble, so 12 is written '<'). mfsmaster refuses a
// section newer than the one it writes ("metadata in file have been stored by newer version of
// MFS") and an unknown one. The formats each release writes, read from a metadata file made by
// its own mfsmaster (`mfsmaster -a restore` on "MFSM NEW"):
var sectionFormats = []struct {
	release  Version
	sections map[string]uint8
}{
	{V3_0_117, map[string]uint8{"SESS": 0x15, "SCLA": 0x16, "NODE": 0x14, "EDGE": 0x11, "FREE": 0x10, "QUOT": 0x11,
		"XATR": 0x10, "PACL": 0x11, "OPEN": 0x10, "FLCK": 0x10, "PLCK": 0x10, "CSDB": 0x13, "CHNK": 0x11}},
	{V4_59_2, map[string]uint8{"SESS": 0x16, "SCLA": 0x1c, "PATT": 0x11, "NODE": 0x14, "EDGE": 0x11, "FREE": 0x10,
		"QUOT": 0x11, "XATR": 0x10, "PACL": 0x11, "OPEN": 0x10, "FLCK": 0x10, "PLCK": 0x10, "CSDB": 0x13, "CHNK": 0x12}},
}

// Section is one section header of a metadata file.
type Section struct {
	Name   string
	Format uint8 // X<<4 | Y of "NAME X.Y"
}

func (s Section) String() string { return fmt.Sprintf("%s %d.%d", s.Name, s.Format>>4, s.Format&0xf) }

// MetadataNeed is the oldest release able to load a metadata file.
type MetadataNeed struct {
	// Version is the oldest tested release that loads every section; zero when the file is
	// newer than every tested release (Newest).
	Version Version
	// Newest is the section that no tested release reads, when Version is zero.
	Newest Section
}

func (n MetadataNeed) String() string {
	if n.Version.IsZero() {
		return fmt.Sprintf("a MooseFS newer than %s (section %s)", sectionFormats[len(sectionFormats)-1].release, n.Newest)
	}
	return "MooseFS " + n.Version.String()
}

// Release is the release as a snapshot records it: "4.59.2", or ">4.59.2" when the file is
// newer than every tested release.
func (n MetadataNeed) Release() string {
	if n.Version.IsZero() {
		return ">" + sectionFormats[len(sectionFormats)-1].release.String()
	}
	return n.Version.String()
}

// LoadableBy reports whether mfsmaster release v loads a file of this need. A release newer
// than every tested one is taken to load what the newest tested one loads.
func (n MetadataNeed) LoadableBy(v Version) bool {
	if n.Version.IsZero() {
		return v.Compare(sectionFormats[len(sectionFormats)-1].release) > 0
	}
	return v.Compare(n.Version) >= 0
}

// Sections reads the section headers of the metadata file at path (seeking over their
// contents: cheap for any size). An empty file system ("MFSM NEW") has none.
func Sections(path string) ([]Section, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metadata sections: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("metadata sections: %w", err)
	}
	return ReadSections(f, st.Size(), path)
}

// ReadSections reads the section headers of a metadata file of size bytes from f; errors
// name path.
func ReadSections(f io.ReaderAt, size int64, path string) ([]Section, error) {
	head := make([]byte, 8)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("metadata file %s: read signature: %w", path, err)
	}
	switch string(head) {
	case "MFSM NEW":
		return nil, nil
	case "MFSM 2.0":
	default:
		return nil, fmt.Errorf("metadata file %s: signature %q, want \"MFSM 2.0\"", path, head)
	}
	var out []Section
	hdr := make([]byte, 16)
	for off := int64(24); ; {
		if _, err := f.ReadAt(hdr, off); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("metadata file %s: section header at offset %d: truncated", path, off)
			}
			return nil, fmt.Errorf("metadata file %s: section header at offset %d: %w", path, off, err)
		}
		if string(hdr) == "[MFS EOF MARKER]" {
			return out, nil
		}
		name, x, y := string(hdr[:4]), hdr[5], hdr[7]
		if strings.ContainsFunc(name, func(r rune) bool { return r < 'A' || r > 'Z' }) || hdr[4] != ' ' || hdr[6] != '.' ||
			x < '0' || x > '0'+15 || y < '0' || y > '0'+15 {
			return nil, fmt.Errorf("metadata file %s: section header at offset %d is %q, want \"NAME X.Y\"", path, off, hdr[:8])
		}
		out = append(out, Section{Name: name, Format: (x-'0')<<4 | (y - '0')})
		n := binary.BigEndian.Uint64(hdr[8:])
		if n > uint64(size) {
			return nil, fmt.Errorf("metadata file %s: section %s at offset %d claims %d bytes, the file has %d", path, name, off, n, size)
		}
		off += 16 + int64(n)
	}
}

// MetadataNeeds returns the oldest tested release whose mfsmaster loads the metadata file at
// path: one that knows every section at its format or newer.
func MetadataNeeds(path string) (MetadataNeed, error) {
	secs, err := Sections(path)
	if err != nil {
		return MetadataNeed{}, err
	}
	return Needs(secs), nil
}

// Needs returns the oldest tested release that loads a file of these sections.
func Needs(secs []Section) MetadataNeed {
	var newest Section
	for _, r := range sectionFormats {
		i := slices.IndexFunc(secs, func(s Section) bool {
			f, ok := r.sections[s.Name]
			return !ok || s.Format > f
		})
		if i < 0 {
			return MetadataNeed{Version: r.release}
		}
		newest = secs[i]
	}
	return MetadataNeed{Newest: newest}
}

// CheckFold fails, naming the binary, its release and what the file needs, unless mfsmaster
// bin (of release binVersion) can load the metadata file at path.
func CheckFold(bin string, binVersion Version, path string) error {
	need, err := MetadataNeeds(path)
	if err != nil {
		return err
	}
	if !need.LoadableBy(binVersion) {
		return fmt.Errorf("%w: %s is MooseFS %s, but metadata file %s was written by %s: set MFSMASTER_BIN (--mfsmaster) to the cluster's mfsmaster",
			ErrVersion, bin, binVersion, path, need)
	}
	return nil
}
