package snapshot

import (
	"fmt"
	"io"

	"github.com/mfsha/mfsha/internal/metafile"
)

// fileCheck sees a metadata file go by, keeping only its first and last bytes, and then checks
// them as metafile.CheckReaderAt would check the whole file: signature, header, end marker.
// It lets uploads and downloads verify the very bytes they stream, in the same pass.
type fileCheck struct {
	head []byte // the first HeaderSize bytes
	tail []byte // the last len(EOFMarker) bytes
	n    int64
}

func (c *fileCheck) Write(p []byte) (int, error) {
	if k := metafile.HeaderSize - len(c.head); k > 0 {
		c.head = append(c.head, p[:min(k, len(p))]...)
	}
	keep := len(metafile.EOFMarker)
	if len(p) >= keep {
		c.tail = append(c.tail[:0], p[len(p)-keep:]...)
	} else {
		c.tail = append(c.tail, p...)
		if len(c.tail) > keep {
			c.tail = c.tail[:copy(c.tail, c.tail[len(c.tail)-keep:])]
		}
	}
	c.n += int64(len(p))
	return len(p), nil
}

// check checks what was written; the error says what is wrong, not which file.
func (c *fileCheck) check() (metafile.Header, error) {
	return metafile.CheckReaderAt(c, c.n)
}

// ReadAt serves the kept bytes to metafile.CheckReaderAt, which reads only those.
func (c *fileCheck) ReadAt(p []byte, off int64) (int, error) {
	tailAt := c.n - int64(len(c.tail))
	switch {
	case off >= 0 && off+int64(len(p)) <= int64(len(c.head)):
		return copy(p, c.head[off:]), nil
	case off >= tailAt && off+int64(len(p)) <= c.n:
		return copy(p, c.tail[off-tailAt:]), nil
	case off >= c.n:
		return 0, io.EOF
	}
	return 0, fmt.Errorf("read %d bytes at %d: only the first %d and last %d of %d bytes were kept", len(p), off, len(c.head), len(c.tail), c.n)
}
