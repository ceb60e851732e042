package failover

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/mfsha/mfsha/shipper"
)

var changelogRE = regexp.MustCompile(`^changelog\.[0-9]+\.mfs$`)

// prepareLocal readies a master's own DATA_PATH for `mfsmaster -a`: a changelog file whose last
// line is torn (the master died while writing it) would be skipped whole by mfsmaster -a, so
// the torn part is cut off (it was never acknowledged to a client). It returns the version the
// master must serve at least: one past the newest whole line.
func prepareLocal(dir string, log *slog.Logger) (uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("master DATA_PATH: %w", err)
	}
	for _, e := range ents {
		if !changelogRE.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		cut, err := trimTorn(p)
		if err != nil {
			return 0, err
		}
		if cut > 0 {
			log.Warn("cut a torn last line off a changelog before mfsmaster -a", "file", p, "bytes", cut)
		}
	}
	last, _, found, err := shipper.LastLine(dir, shipper.KindMaster)
	if err != nil || !found {
		return 0, err
	}
	return last + 1, nil
}

// trimTorn truncates path after its last '\n' and returns how many bytes it cut.
func trimTorn(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	end := st.Size()
	for chunk := int64(4096); ; chunk *= 4 {
		from := max(end-chunk, 0)
		buf := make([]byte, end-from)
		if _, err := f.ReadAt(buf, from); err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 || from == 0 {
			keep := from + int64(i) + 1
			if keep == end {
				return 0, nil
			}
			if err := f.Truncate(keep); err != nil {
				return 0, fmt.Errorf("cut the torn line of %s: %w", path, err)
			}
			return end - keep, f.Sync()
		}
	}
}
