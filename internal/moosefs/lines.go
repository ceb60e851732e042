package moosefs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
)

// newOps are the changelog operations 4.59.2 writes and 3.0.117's mfsmaster does not know
// (absent from its restore table: checked against both binaries). A 3.0.117 fold stops at the
// first one with "changelog.0.mfs:N: ... expected" or an unknown-operation error.
var newOps = map[string]Version{
	"ADDATTR": V4_59_2, "AUTOARCH": V4_59_2, "CHUNKFLAGSCLR": V4_59_2, "PATADD": V4_59_2, "PATDEL": V4_59_2,
	"SCECVERSION": V4_59_2, "SCECON": V4_59_2, "SESCONNECTED": V4_59_2, "TRASH_RECOVER": V4_59_2, "TRASH_REMOVE": V4_59_2,
}

// LineNeeds returns the oldest tested release whose mfsmaster replays the changelog line
// (without its newline), and its operation; a zero Version when any tested release does.
func LineNeeds(line []byte) (Version, string) {
	_, rest, ok := bytes.Cut(line, []byte{'|'})
	if !ok {
		return Version{}, ""
	}
	op, _, ok := bytes.Cut(rest, []byte{'('})
	if !ok {
		return Version{}, ""
	}
	if v, ok := newOps[string(op)]; ok {
		return v, string(op)
	}
	return Version{}, ""
}

// CheckLines fails, naming the binary, both releases, the file and the line's version and
// operation, when the changelog file at path holds a line m's release cannot replay. Metadata
// says which release wrote it (see CheckFold); this is for lines folded onto an empty file
// system, which says nothing.
func (m Mfsmaster) CheckLines(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check %s for %s: %w", path, m, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		need, op := LineNeeds(sc.Bytes())
		if !need.IsZero() && m.Version.Compare(need) < 0 {
			v, _, _ := bytes.Cut(sc.Bytes(), []byte{':'})
			return fmt.Errorf("%w: %s is MooseFS %s, but %s line %s (%s) was written by MooseFS %s or newer: set MFSMASTER_BIN (--mfsmaster) to the cluster's mfsmaster",
				ErrVersion, m.Path, m.Version, path, v, op, need)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("check %s for %s: %w", path, m, err)
	}
	return nil
}
