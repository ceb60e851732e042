package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strconv"

	"github.com/mfsha/mfsha/internal/changelog"
)

// TreeSpec describes a synthetic file system that looks like a real one: a directory tree a
// few levels deep with tens of entries per directory and a few huge directories, files with
// chunks and lengths, hard links, symlinks and extended attributes.
type TreeSpec struct {
	Inodes int    // objects created: directories, files and symlinks (hard links add none)
	Seed   int64  // the same seed makes the same tree
	MetaID uint64 // the SETMETAID of the first line
	Time   int64  // unix time of every line

	// Fractions of Inodes; zero takes the default in brackets.
	Dirs     float64 // directories [0.05: about 20 entries per directory]
	Symlinks float64 // symlinks [0.02]
	Links    float64 // extra hard links to files, as a fraction of files [0.01]
	Xattrs   float64 // files and directories with one user.* attribute [0.02]
	Huge     int     // directories holding Inodes/50 files each (at most 200,000) [3]
	MaxDepth int     // depth of the deepest directories [6]
}

// TreeStats counts what a tree's changelog made.
type TreeStats struct {
	Dirs, Files, Symlinks, Links, Xattrs, Chunks int
	Lines                                        uint64 // changelog lines, SETMETAID included
	Bytes                                        int64  // of changelog text
}

func (s TreeStats) String() string {
	return fmt.Sprintf("%d dirs, %d files (%d chunks), %d symlinks, %d hard links, %d xattrs; %d lines, %d MB of changelog",
		s.Dirs, s.Files, s.Chunks, s.Symlinks, s.Links, s.Xattrs, s.Lines, s.Bytes>>20)
}

func (t *TreeSpec) defaults() {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&t.Dirs, 0.05)
	def(&t.Symlinks, 0.02)
	def(&t.Links, 0.01)
	def(&t.Xattrs, 0.02)
	if t.Huge == 0 {
		t.Huge = 3
	}
	if t.MaxDepth == 0 {
		t.MaxDepth = 6
	}
}

// Validate names the field that cannot make a tree.
func (t TreeSpec) Validate() error {
	t.defaults()
	switch {
	case t.Inodes < 1 || t.Inodes > math.MaxUint32-2:
		return fmt.Errorf("tree: Inodes = %d: want 1 to %d", t.Inodes, math.MaxUint32-2)
	case t.Dirs < 0 || t.Symlinks < 0 || t.Links < 0 || t.Xattrs < 0 || t.Dirs+t.Symlinks >= 1:
		return fmt.Errorf("tree: fractions Dirs = %v, Symlinks = %v, Links = %v, Xattrs = %v: want at least 0, Dirs+Symlinks below 1",
			t.Dirs, t.Symlinks, t.Links, t.Xattrs)
	case t.MaxDepth < 1 || t.Huge < 0:
		return fmt.Errorf("tree: MaxDepth = %d, Huge = %d: want MaxDepth at least 1, Huge at least 0", t.MaxDepth, t.Huge)
	}
	return nil
}

// treeWriter writes one tree's changelog. Inodes and chunk ids are those a new file system
// (MakeMetadata's "MFSM NEW") allocates in `mfsmaster -a restore`: inodes from 2 and chunk
// ids from 1, in order, because nothing is ever removed.
type treeWriter struct {
	w       *bufio.Writer
	ts      string
	version uint64
	inode   uint32 // last inode made
	chunk   uint64 // last chunk id made
	b       []byte
	err     error
	stats   TreeStats
}

// line writes the version, the time and b (OP(args)[:result]); every line passes
// changelog.Check, the check shipping and folding use.
func (tw *treeWriter) line(op []byte) {
	if tw.err != nil {
		return
	}
	tw.b = strconv.AppendUint(tw.b[:0], tw.version, 10)
	tw.b = append(tw.b, ": "...)
	tw.b = append(tw.b, tw.ts...)
	tw.b = append(tw.b, '|')
	tw.b = append(tw.b, op...)
	if err := changelog.Check(tw.b); err != nil {
		tw.err = fmt.Errorf("tree: generated line %q: %w", tw.b, err)
		return
	}
	tw.b = append(tw.b, '\n')
	n, err := tw.w.Write(tw.b)
	tw.stats.Bytes += int64(n)
	tw.err = err
	tw.version++
	tw.stats.Lines++
}

// WriteTree writes the changelog of spec's tree to w, from version 1 (SETMETAID) on: fold it
// onto "MFSM NEW" with MakeTree. It returns what the lines make; the metadata's version after
// folding is Lines+1.
func WriteTree(w io.Writer, spec TreeSpec) (TreeStats, error) {
	if err := spec.Validate(); err != nil {
		return TreeStats{}, err
	}
	spec.defaults()
	rng := rand.New(rand.NewSource(spec.Seed))
	tw := &treeWriter{w: bufio.NewWriterSize(w, 1<<20), ts: strconv.FormatInt(spec.Time, 10), version: 1, inode: 1}
	var op []byte
	tw.line(fmt.Appendf(op, "SETMETAID(%d)", spec.MetaID))

	// Directories, breadth first: each gets a random number of subdirectories around the
	// branching that reaches the wanted count at MaxDepth. When a pass ends below the count
	// (an unlucky draw near the root), the next pass adds more to every directory above
	// MaxDepth, so the tree is at most MaxDepth deep and has all its directories.
	nDirs := max(1, int(float64(spec.Inodes)*spec.Dirs))
	nLinks := int(float64(spec.Inodes) * spec.Links)
	nSym := int(float64(spec.Inodes) * spec.Symlinks)
	if nDirs+nSym > spec.Inodes {
		nSym = spec.Inodes - nDirs
	}
	nFiles := spec.Inodes - nDirs - nSym
	branch := math.Pow(float64(nDirs), 1/float64(spec.MaxDepth))
	dirs := []uint32{1} // the root; every directory made, in order
	depth := []int{0}
	subs := []int{0} // subdirectories made in each
	for len(dirs)-1 < nDirs && tw.err == nil {
		for i := 0; i < len(dirs) && len(dirs)-1 < nDirs && tw.err == nil; i++ {
			if depth[i] >= spec.MaxDepth {
				continue
			}
			k := 1 + rng.Intn(max(1, int(2*branch)))
			for j := 0; j < k && len(dirs)-1 < nDirs; j++ {
				tw.inode++
				op = appendCreate(op[:0], dirs[i], "d", subs[i], 2, 0o755, uint32(rng.Intn(4)*1000), tw.inode)
				tw.line(op)
				subs[i]++
				dirs = append(dirs, tw.inode)
				depth = append(depth, depth[i]+1)
				subs = append(subs, 0)
				tw.stats.Dirs++
			}
		}
	}
	dirs = dirs[1:] // files and symlinks go into the directories made (the root holds only directories)

	// Files: a few huge directories take Inodes/50 each; the rest is spread over every
	// directory with an exponential count (many small directories, some of hundreds).
	per := make([]int, len(dirs))
	left := nFiles
	for h := 0; h < spec.Huge && left > 0; h++ {
		n := min(left, spec.Inodes/50, 200000)
		per[rng.Intn(len(dirs))] += n
		left -= n
	}
	mean := float64(left) / float64(len(dirs))
	for i := range per {
		if left == 0 {
			break
		}
		n := min(left, int(rng.ExpFloat64()*mean))
		per[i] += n
		left -= n
	}
	for left > 0 { // what the draws left: one more each, from the first
		for i := range per {
			if left == 0 {
				break
			}
			per[i]++
			left--
		}
	}
	files := make([]uint32, 0, nFiles)
	for di, n := range per {
		for j := 0; j < n && tw.err == nil; j++ {
			tw.inode++
			ino := tw.inode
			op = appendCreate(op[:0], dirs[di], "f", j, 1, 0o644, uint32(rng.Intn(4)*1000), ino)
			tw.line(op)
			files = append(files, ino)
			tw.stats.Files++
			tw.writeData(rng, ino)
		}
	}

	// Symlinks to files, hard links of files into other directories, attributes.
	for i := 0; i < nSym && tw.err == nil; i++ {
		tw.inode++
		op = append(op[:0], "SYMLINK("...)
		op = strconv.AppendUint(op, uint64(dirs[rng.Intn(len(dirs))]), 10)
		op = fmt.Appendf(op, ",s%d,../data/f%d.dat,%d,%d):%d", i, rng.Intn(1000), 1000, 1000, tw.inode)
		tw.line(op)
		tw.stats.Symlinks++
	}
	for i := 0; i < nLinks && len(files) > 0 && tw.err == nil; i++ {
		op = fmt.Appendf(op[:0], "LINK(%d,%d,h%d)", files[rng.Intn(len(files))], dirs[rng.Intn(len(dirs))], i)
		tw.line(op)
		tw.stats.Links++
	}
	nX := int(float64(spec.Inodes) * spec.Xattrs)
	for i := 0; i < nX && tw.err == nil; i++ {
		ino := 2 + rng.Intn(int(tw.inode-1))
		// A value with bytes that need escaping, as real attributes have.
		op = fmt.Appendf(op[:0], "SETXATTR(%d,user.tag%d,", ino, i)
		op = changelog.AppendEscape(op, fmt.Sprintf("owner=%d, (project %d)", rng.Intn(100), i))
		op = append(op, ",0)"...)
		tw.line(op)
		tw.stats.Xattrs++
	}
	if tw.err != nil {
		return tw.stats, tw.err
	}
	if err := tw.w.Flush(); err != nil {
		return tw.stats, fmt.Errorf("tree: %w", err)
	}
	return tw.stats, nil
}

// writeData gives file ino a size: empty (a third), one chunk of up to 64 MiB (half), or up
// to 8 chunks. Each chunk is a WRITE that makes a new chunk id, then one LENGTH sets the size,
// as mfsmaster logs a client's write.
func (tw *treeWriter) writeData(rng *rand.Rand, ino uint32) {
	var chunks int
	switch r := rng.Intn(6); {
	case r < 2:
		return
	case r < 5:
		chunks = 1
	default:
		chunks = 2 + rng.Intn(7)
	}
	var op []byte
	for c := 0; c < chunks; c++ {
		tw.chunk++
		op = fmt.Appendf(op[:0], "WRITE(%d,%d,1):%d", ino, c, tw.chunk)
		tw.line(op)
		tw.stats.Chunks++
	}
	length := uint64(chunks-1)<<26 + 1 + uint64(rng.Int63n(1<<26))
	op = fmt.Appendf(op[:0], "LENGTH(%d,%d)", ino, length)
	tw.line(op)
}

// appendCreate appends CREATE(parent,<prefix><n>,type,mode,18,uid,uid,0):inode.
func appendCreate(b []byte, parent uint32, prefix string, n int, typ int, mode int, uid uint32, inode uint32) []byte {
	b = append(b, "CREATE("...)
	b = strconv.AppendUint(b, uint64(parent), 10)
	b = append(b, ',')
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = fmt.Appendf(b, ",%d,%d,18,%d,%d,0):%d", typ, mode, uid, uid, inode)
	return b
}

// MakeTree writes DIR/metadata.mfs holding spec's tree, made by the real mfsmaster (the binary
// named): WriteTree's changelog folded onto a new file system by `mfsmaster -a restore`. The
// file has the format of that mfsmaster's release; its version is the returned stats' Lines+1.
func MakeTree(ctx context.Context, mfsmaster, dir string, spec TreeSpec) (TreeStats, Folded, error) {
	if err := spec.Validate(); err != nil {
		return TreeStats{}, Folded{}, err
	}
	var st TreeStats
	r, err := foldNew(ctx, mfsmaster, dir, func(w io.Writer) (err error) {
		st, err = WriteTree(w, spec)
		return err
	}, func() uint64 { return st.Lines + 1 })
	return st, r, err
}
