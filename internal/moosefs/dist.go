package moosefs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dist is one installed MooseFS release: the directories of its daemons (mfsmaster,
// mfsmetalogger, mfschunkserver, mfsmetadump) and of its client tools (mfsmount,
// mfsmakesnapshot, ...).
type Dist struct {
	Version Version
	Sbin    string
	Bin     string
}

// ErrNotInstalled is wrapped when a release's binary is missing.
var ErrNotInstalled = errors.New("MooseFS binary not installed")

// Installed lists where mfsha's Makefile and Debian put the releases it is tested with.
var Installed = []Dist{
	{Version: V3_0_117, Sbin: "/usr/sbin", Bin: "/usr/bin"},
	{Version: V4_59_2, Sbin: "/opt/moosefs-4.59.2/sbin", Bin: "/opt/moosefs-4.59.2/bin"},
}

// DistOf returns the installed Dist of the release named v ("3.0.117", "4.59.2").
func DistOf(v string) (Dist, error) {
	want, err := ParseVersion(v)
	if err != nil {
		return Dist{}, err
	}
	for _, d := range Installed {
		if d.Version == want {
			return d, nil
		}
	}
	return Dist{}, fmt.Errorf("%w %s: not one of the tested releases %v", ErrVersion, v, Installed)
}

func (d Dist) String() string {
	return "MooseFS " + d.Version.String() + " (" + d.Sbin + ", " + d.Bin + ")"
}

// daemons live in sbin; everything else (mfsmount, mfsmakesnapshot, mfscli...) in bin.
var daemons = map[string]bool{
	"mfsmaster": true, "mfsmetalogger": true, "mfschunkserver": true, "mfsmetadump": true,
	"mfsmetarestore": true, "mfssupervisor": true, "mfschunktool": true, "mfsbdev": true,
}

// Path returns where the release's binary name lives; it does not check that it exists.
func (d Dist) Path(name string) string {
	if daemons[name] {
		return filepath.Join(d.Sbin, name)
	}
	return filepath.Join(d.Bin, name)
}

// Check fails, naming the first binary missing, unless every one of names is an executable
// of this release, and unless its mfsmaster reports the release's version: a Dist must never
// quietly run another release's binaries.
func (d Dist) Check(ctx context.Context, names ...string) error {
	for _, n := range names {
		p := d.Path(n)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s: %w: %s", d, ErrNotInstalled, p)
		}
	}
	got, err := BinaryVersion(ctx, d.Path("mfsmaster"))
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	if got != d.Version {
		return fmt.Errorf("%s: %w: %s reports %s", d, ErrVersion, d.Path("mfsmaster"), got)
	}
	return nil
}
