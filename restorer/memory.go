package restorer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoMemory: the host has less memory available than a fold of the metadata needs.
var ErrNoMemory = errors.New("not enough memory to fold")

// Memory a fold needs, measured with `mfsmaster -a restore` of trees made by lab.MakeTree
// (deploy/lab/mktree; README "Sizing"): mfsmaster's peak RSS is a fixed part (its hash tables:
// about 470 MB for 3.0.117 and 420 MB for 4.59.2 even for an empty file system) plus about 2.3
// times the size of the metadata file (3.0.117: 1M inodes, 92 MB of metadata, 701 MB peak;
// 10M inodes, 909 MB, 2,593 MB peak). The estimate rounds both up (512 MB + 3 x the file) so
// that a fold the check lets through does not meet the OOM killer; the lines being folded
// add what they create, which FOLD_LINES keeps small.
const (
	foldFixedBytes   = 512 << 20
	foldBytesPerMeta = 3
)

// FoldNeed estimates mfsmaster's peak memory, in bytes, for a fold of a metadata file of
// metaBytes bytes.
func FoldNeed(metaBytes int64) int64 { return foldFixedBytes + foldBytesPerMeta*metaBytes }

// Available returns the memory a new process may take: /proc/meminfo's MemAvailable, or less
// when mfsha's memory cgroup (v2 memory.max or v1 memory.limit_in_bytes) leaves less, and
// where that figure came from.
func Available() (int64, string, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, "", fmt.Errorf("available memory: %w", err)
	}
	avail := int64(-1)
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, "", fmt.Errorf("available memory: /proc/meminfo line %q: %w", l, err)
			}
			avail = kb << 10
		}
	}
	if avail < 0 {
		return 0, "", errors.New("available memory: /proc/meminfo has no MemAvailable line")
	}
	src := "MemAvailable in /proc/meminfo"
	if left, where, ok := cgroupLeft(); ok && left < avail {
		avail, src = left, where
	}
	return avail, src, nil
}

// cgroupLeft returns limit - usage of this process's memory cgroup, when it has a limit.
func cgroupLeft() (int64, string, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// v2: "0::/path"; v1: "N:memory:/path" (or "N:...,memory,...:/path").
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var limit, usage string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir := filepath.Join("/sys/fs/cgroup", parts[2])
			limit, usage = filepath.Join(dir, "memory.max"), filepath.Join(dir, "memory.current")
		case hasController(parts[1], "memory"):
			dir := filepath.Join("/sys/fs/cgroup/memory", parts[2])
			limit, usage = filepath.Join(dir, "memory.limit_in_bytes"), filepath.Join(dir, "memory.usage_in_bytes")
		default:
			continue
		}
		l, err1 := readInt(limit)
		u, err2 := readInt(usage)
		// "max" (v2) or a huge number (v1, page-rounded MaxInt64) is no limit.
		if err1 != nil || err2 != nil || l >= 1<<62 {
			continue
		}
		return max(0, l-u), limit + " less its usage", true
	}
	return 0, "", false
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// checkFoldMemory returns an error wrapping ErrNoMemory, naming what the fold of base needs and
// what the host has, when the host cannot fold it. A fold the check lets through may still
// fail if other processes take the memory meanwhile: mfsmaster then dies and the fold's
// error names it; the last good metadata stays either way.
func checkFoldMemory(base string) error {
	fi, err := os.Stat(base)
	if err != nil {
		return fmt.Errorf("fold memory check: %w", err)
	}
	need := FoldNeed(fi.Size())
	avail, src, err := Available()
	if err != nil {
		return fmt.Errorf("fold memory check: %w", err)
	}
	if avail < need {
		return fmt.Errorf("%w: mfsmaster -a restore of %s (%d MB) needs about %d MB, the host has %d MB available (%s); "+
			"a standby or restore host needs the memory of the master it replaces (README: Sizing)",
			ErrNoMemory, base, fi.Size()>>20, need>>20, avail>>20, src)
	}
	return nil
}
