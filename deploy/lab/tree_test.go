package lab

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMakeTree: a 10,000-inode tree folded by the real mfsmaster of the release under test
// holds, by mfsmetadump of the result, the directories, files, symlinks, hard links, xattrs
// and chunks the changelog made, files with lengths, a tree 3 to 6 levels deep and a huge
// directory.
func TestMakeTree(t *testing.T) {
	d := testMooseFS(t)
	if err := d.Check(context.Background(), "mfsmaster", "mfsmetadump"); err != nil {
		t.Fatalf("%v: run `make deps`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	spec := TreeSpec{Inodes: 10000, Seed: 7, MetaID: 4242, Time: 1700000000}
	st, r, err := MakeTree(ctx, d.Path("mfsmaster"), dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; fold %.1f s, peak RSS %d MB", st, r.Fold.Seconds(), r.MaxRSS>>20)
	if r.Version != st.Lines+1 {
		t.Fatalf("version %d, want lines+1 = %d", r.Version, st.Lines+1)
	}
	if got := st.Dirs + st.Files + st.Symlinks; got != spec.Inodes {
		t.Fatalf("stats count %d objects, want %d", got, spec.Inodes)
	}
	out, err := exec.CommandContext(ctx, d.Path("mfsmetadump"), dir+"/metadata.mfs").Output()
	if err != nil {
		t.Fatalf("mfsmetadump: %v", err)
	}
	got := dumpCounts(t, out)
	want := dumpCount{dirs: st.Dirs + 1, files: st.Files, symlinks: st.Symlinks, edges: st.Dirs + st.Files + st.Symlinks + st.Links,
		xattrs: st.Xattrs, chunks: st.Chunks, sizedFiles: got.sizedFiles, maxDepth: got.maxDepth, biggestDir: got.biggestDir}
	if got != want {
		t.Fatalf("mfsmetadump counts %+v, want %+v", got, want)
	}
	if st.Dirs < 100 || st.Symlinks == 0 || st.Links == 0 || st.Xattrs == 0 || st.Chunks < st.Files/2 {
		t.Fatalf("the tree lacks variety: %s", st)
	}
	if got.sizedFiles < st.Files/2 || got.sizedFiles == st.Files {
		t.Fatalf("%d of %d files have a length, want most but not all", got.sizedFiles, st.Files)
	}
	if got.maxDepth < 3 || got.maxDepth > 6 {
		t.Fatalf("tree depth %d, want 3 to 6", got.maxDepth)
	}
	if got.biggestDir < spec.Inodes/50 {
		t.Fatalf("biggest directory has %d entries, want a huge one of at least %d", got.biggestDir, spec.Inodes/50)
	}
}

type dumpCount struct {
	dirs, files, symlinks, edges, xattrs, chunks int
	sizedFiles, maxDepth, biggestDir             int
}

// dumpCounts reads mfsmetadump's text: NODE|k:D (directories), k:- (files, "l:" their
// length), k:L (symlinks), EDGE|p:PARENT|c:CHILD, XATTR and CHUNK lines.
func dumpCounts(t *testing.T, out []byte) dumpCount {
	t.Helper()
	var c dumpCount
	parent := map[int]int{}
	entries := map[int]int{}
	field := func(line, key string) string {
		i := strings.Index(line, "|"+key+":")
		if i < 0 {
			t.Fatalf("mfsmetadump line without %q: %s", key, line)
		}
		v := line[i+len(key)+2:]
		if j := strings.IndexByte(v, '|'); j >= 0 {
			v = v[:j]
		}
		return strings.TrimSpace(v)
	}
	num := func(line, key string) int {
		n, err := strconv.Atoi(field(line, key))
		if err != nil {
			t.Fatalf("mfsmetadump field %q: %v: %s", key, err, line)
		}
		return n
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "NODE|k:D"):
			c.dirs++
		case strings.HasPrefix(line, "NODE|k:-"):
			c.files++
			if num(line, "l") > 0 {
				c.sizedFiles++
			}
		case strings.HasPrefix(line, "NODE|k:L"):
			c.symlinks++
		case strings.HasPrefix(line, "EDGE|"):
			c.edges++
			p, ch := num(line, "p"), num(line, "c")
			parent[ch] = p
			entries[p]++
		case strings.HasPrefix(line, "XATTR|"):
			c.xattrs++
		case strings.HasPrefix(line, "CHUNK|"):
			c.chunks++
		}
	}
	for _, n := range entries {
		c.biggestDir = max(c.biggestDir, n)
	}
	for d := range entries { // the depth of the deepest directory with entries
		depth := 0
		for p := d; p != 1; p = parent[p] {
			if depth++; depth > 100 {
				t.Fatalf("inode %d: no way to the root", d)
			}
		}
		c.maxDepth = max(c.maxDepth, depth)
	}
	return c
}
