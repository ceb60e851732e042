package moosefs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Mfsmaster is an mfsmaster binary and the release it reports: the one setting
// (MFSMASTER_BIN) that every fold (restore, standby, promotion) and the serving master use.
type Mfsmaster struct {
	Path    string
	Version Version
}

func (m Mfsmaster) String() string { return m.Path + " (MooseFS " + m.Version.String() + ")" }

// FindMfsmaster resolves bin, a path or a name looked up on PATH and then in /usr/sbin and
// /sbin (a non-login root PATH may lack them), and asks it for its release (`bin -v`). Errors
// name bin.
func FindMfsmaster(ctx context.Context, bin string) (Mfsmaster, error) {
	if bin == "" {
		bin = "mfsmaster"
	}
	path := bin
	if !strings.Contains(bin, "/") {
		var err error
		if path, err = exec.LookPath(bin); err != nil {
			path = ""
			for _, d := range []string{"/usr/sbin", "/sbin"} {
				p := filepath.Join(d, bin)
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
					path = p
					break
				}
			}
			if path == "" {
				return Mfsmaster{}, fmt.Errorf("mfsmaster binary %q (MFSMASTER_BIN): not found on PATH, in /usr/sbin or /sbin: %w", bin, ErrNotInstalled)
			}
		}
	}
	v, err := BinaryVersion(ctx, path)
	if err != nil {
		return Mfsmaster{}, fmt.Errorf("mfsmaster binary %q (MFSMASTER_BIN): %w", bin, err)
	}
	return Mfsmaster{Path: path, Version: v}, nil
}

// CheckFold fails, naming the binary, its release and the release the file needs, unless m
// loads the metadata file at path; see CheckFold.
func (m Mfsmaster) CheckFold(path string) error { return CheckFold(m.Path, m.Version, path) }

// CheckDataDir checks every metadata file in a master's DATA_PATH that `mfsmaster -a` may
// load (names starting "metadata", as it picks them; not metadata.crc or a .tmp being
// written) with CheckFold, before m runs there. Files it cannot read are left to mfsmaster,
// which validates them itself: only a file known to need a newer release is refused here.
func (m Mfsmaster) CheckDataDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("check %s for %s: %w", dir, m, err)
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, "metadata") || n == "metadata.crc" || strings.HasSuffix(n, ".tmp") {
			continue
		}
		p := filepath.Join(dir, n)
		need, err := MetadataNeeds(p)
		if err != nil {
			continue
		}
		if !need.LoadableBy(m.Version) {
			return m.CheckFold(p)
		}
	}
	return nil
}
