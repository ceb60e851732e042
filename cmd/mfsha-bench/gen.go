package main

import (
	"fmt"
	"io"
	"strconv"
)

// workload writes changelog lines like a busy master's: files created in directories, opened,
// written chunk by chunk, closed, their times updated, with session bookkeeping in between.
type workload struct {
	next    uint64 // next version
	ts      int64
	inode   uint64
	chunk   uint64
	perSec  int // lines per second of changelog time
	inSec   int
	session uint64
	buf     []byte
}

func newWorkload(first uint64) *workload {
	return &workload{next: first, ts: 1764000000, inode: 1000, chunk: 5000, perSec: 20000, session: 7}
}

// line appends the next line (without '\n') to dst.
func (w *workload) line(dst []byte) []byte {
	v := w.next
	w.next++
	if w.inSec++; w.inSec >= w.perSec {
		w.ts++
		w.inSec = 0
	}
	dst = strconv.AppendUint(dst, v, 10)
	dst = append(dst, ": "...)
	dst = strconv.AppendInt(dst, w.ts, 10)
	dst = append(dst, '|')
	ino := w.inode
	switch v % 8 {
	case 0:
		w.inode++
		ino = w.inode
		dst = fmt.Appendf(dst, "CREATE(%d,img_%07d.jpg,1,420,18,%d,%d,0):%d", 100+ino%50, ino, 1000+ino%3, 1000, ino)
	case 1:
		dst = fmt.Appendf(dst, "ACQUIRE(%d,%d)", ino, w.session)
	case 2:
		w.chunk++
		dst = fmt.Appendf(dst, "WRITE(%d,0,1,1):%d", ino, w.chunk)
	case 3:
		dst = fmt.Appendf(dst, "LENGTH(%d,%d,1)", ino, 65536+(ino*7919)%4000000)
	case 4:
		dst = fmt.Appendf(dst, "UNLOCK(%d)", w.chunk)
	case 5:
		dst = fmt.Appendf(dst, "RELEASE(%d,%d)", ino, w.session)
	case 6:
		dst = fmt.Appendf(dst, "AMTIME(%d,%d,%d,%d)", ino, w.ts, w.ts, w.ts)
	default:
		dst = fmt.Appendf(dst, "ATTR(%d,420,%d,1000,%d,%d,0,0)", ino, 1000+ino%3, w.ts, w.ts)
	}
	return dst
}

// write writes n lines to out.
func (w *workload) write(out io.Writer, n int) error {
	for i := 0; i < n; i++ {
		w.buf = append(w.line(w.buf[:0]), '\n')
		if _, err := out.Write(w.buf); err != nil {
			return err
		}
	}
	return nil
}
