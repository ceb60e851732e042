package shipper

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/stream"
)

// LastLine returns the version and stream.LineHash of the newest whole changelog line in dir
// (the last line of the newest changelog file that has one), and ok false when no file holds a
// line. A failover agent uses it to know when its shipper has shipped everything a stopped
// master wrote, and whether the files hold lines the stream lacks.
func LastLine(dir string, k Kind) (version, hash uint64, ok bool, err error) {
	files, err := listLogs(dir, k)
	if err != nil {
		return 0, 0, false, err
	}
	for i := len(files) - 1; i >= 0; i-- {
		v, h, found, err := lastLineOf(files[i].path(dir))
		if err != nil || found {
			return v, h, found, err
		}
	}
	return 0, 0, false, nil
}

// lastLineOf reads the last whole line of one file, looking back from its end.
func lastLineOf(path string) (version, hash uint64, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false, fmt.Errorf("last line of %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, false, fmt.Errorf("last line of %s: %w", path, err)
	}
	end := st.Size()
	for chunk := int64(64 << 10); ; chunk *= 4 {
		from := max(end-chunk, 0)
		buf := make([]byte, end-from)
		if _, err := f.ReadAt(buf, from); err != nil && err != io.EOF {
			return 0, 0, false, fmt.Errorf("last line of %s: %w", path, err)
		}
		nl := bytes.LastIndexByte(buf, '\n') // a torn last line (no '\n') is not a line yet
		if nl < 0 {
			if from == 0 {
				return 0, 0, false, nil
			}
			continue
		}
		buf = buf[:nl]
		start := bytes.LastIndexByte(buf, '\n') + 1
		if start == 0 && from > 0 {
			continue // the line starts before this chunk
		}
		line := buf[start:]
		v, _, err := changelog.ParseVersion(line)
		if err != nil {
			return 0, 0, false, fmt.Errorf("last line of %s: %w", path, err)
		}
		return v, stream.LineHash(line), true, nil
	}
}

// LineHashAt returns the stream.LineHash of the line of the given version in dir's changelog
// files (the newest file holding it), and found false when none holds it.
func LineHashAt(dir string, k Kind, version uint64) (hash uint64, found bool, err error) {
	files, err := listLogs(dir, k)
	if err != nil {
		return 0, false, err
	}
	for i := len(files) - 1; i >= 0; i-- {
		p := files[i].path(dir)
		f, err := os.Open(p)
		if err != nil {
			return 0, false, fmt.Errorf("read %s: %w", p, err)
		}
		sc := changelog.NewScanner(f, p)
		for sc.Scan() {
			if sc.Line().Version == version {
				h := stream.LineHash(sc.Raw())
				f.Close()
				return h, true, nil
			}
		}
		f.Close()
	}
	return 0, false, nil
}
