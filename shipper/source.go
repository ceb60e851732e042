// Package shipper publishes a MooseFS master's metadata history to NATS JetStream: every
// changelog line, in order, with no gap and no duplicate, and every metadata snapshot.
package shipper

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// Kind is the kind of data directory shipped from.
type Kind int

const (
	// KindMaster is an mfsmaster DATA_PATH: changelog.N.mfs, metadata.mfs.back.
	KindMaster Kind = iota + 1
	// KindMetalogger is an mfsmetalogger DATA_PATH: changelog_ml.N.mfs,
	// changelog_ml_back.N.mfs, metadata_ml.mfs.back.
	KindMetalogger
)

func (k Kind) String() string {
	switch k {
	case KindMaster:
		return "master"
	case KindMetalogger:
		return "metalogger"
	}
	return "unknown"
}

// ParseKind reads "master", "metalogger" or "" (detect).
func ParseKind(s string) (Kind, error) {
	switch s {
	case "master":
		return KindMaster, nil
	case "metalogger":
		return KindMetalogger, nil
	case "", "auto":
		return 0, nil
	}
	return 0, fmt.Errorf("kind %q: want master, metalogger or auto", s)
}

var (
	masterLogRE = regexp.MustCompile(`^changelog\.([0-9]+)\.mfs$`)
	mlLogRE     = regexp.MustCompile(`^changelog_ml\.([0-9]+)\.mfs$`)
	mlBackRE    = regexp.MustCompile(`^changelog_ml_back\.([0-9]+)\.mfs$`)
)

// DetectKind looks at the files in dir. A directory with files of both kinds is an error: it
// would be ambiguous which history is the master's.
func DetectKind(dir string) (Kind, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("data directory: %w", err)
	}
	var master, ml bool
	for _, e := range ents {
		n := e.Name()
		switch {
		case masterLogRE.MatchString(n), n == "metadata.mfs", n == "metadata.mfs.back":
			master = true
		case mlLogRE.MatchString(n), mlBackRE.MatchString(n), n == "metadata_ml.mfs.back":
			ml = true
		}
	}
	switch {
	case master && ml:
		return 0, fmt.Errorf("data directory %s holds both master and metalogger files; set the kind explicitly", dir)
	case master:
		return KindMaster, nil
	case ml:
		return KindMetalogger, nil
	}
	return 0, fmt.Errorf("data directory %s holds no MooseFS changelog or metadata file; set the kind explicitly", dir)
}

// liveName is the changelog file the MooseFS process appends to.
func (k Kind) liveName() string {
	if k == KindMetalogger {
		return "changelog_ml.0.mfs"
	}
	return "changelog.0.mfs"
}

// SnapshotNames are the metadata files, as renamed into place by MooseFS, that the shipper
// uploads; the first existing one is the newest.
func (k Kind) SnapshotNames() []string {
	if k == KindMetalogger {
		return []string{"metadata_ml.mfs.back"}
	}
	return []string{"metadata.mfs.back", "metadata.mfs"}
}

// logFile is one changelog file on disk.
type logFile struct {
	name  string // base name
	order int    // lower is older
}

// listLogs returns the directory's changelog files, oldest first: for a master changelog.N.mfs
// by falling N; for a metalogger the changelog_ml_back copies (taken at the last metadata
// download) before the changelog_ml files, each by falling N. Overlaps between files are
// expected and resolved by version when reading.
func listLogs(dir string, k Kind) ([]logFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list changelogs in %s: %w", dir, err)
	}
	var out []logFile
	for _, e := range ents {
		n := e.Name()
		var m []string
		base := 0
		if k == KindMaster {
			m = masterLogRE.FindStringSubmatch(n)
		} else if m = mlBackRE.FindStringSubmatch(n); m == nil {
			m = mlLogRE.FindStringSubmatch(n)
			base = 1 << 20
		}
		if m == nil {
			continue
		}
		idx, err := strconv.Atoi(m[1])
		if err != nil || idx > 1<<19 {
			continue
		}
		out = append(out, logFile{name: n, order: base - idx})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out, nil
}

func (f logFile) path(dir string) string { return filepath.Join(dir, f.name) }
