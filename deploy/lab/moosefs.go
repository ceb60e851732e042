package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// newFileSystem is the whole metadata.mfs of an empty MooseFS file system.
const newFileSystem = "MFSM NEW"

// MasterDataDir returns the master's DATA_PATH on host (metadata.mfs, changelogs, lock file).
func (l *Lab) MasterDataDir(host string) string { return filepath.Join(l.HostDir(host), "master") }

// MetaloggerDataDir returns the metalogger's DATA_PATH on host (changelog_ml.*.mfs,
// metadata_ml.mfs.back, lock file).
func (l *Lab) MetaloggerDataDir(host string) string {
	return filepath.Join(l.HostDir(host), "metalogger")
}

// ChunkserverDataDir returns the chunkserver's DATA_PATH on host; its chunks live in the hdd
// subdirectory.
func (l *Lab) ChunkserverDataDir(host string) string {
	return filepath.Join(l.HostDir(host), "chunkserver")
}

// ConfigDir returns the directory that holds the host's MooseFS config files.
func (l *Lab) ConfigDir(host string) string { return filepath.Join(l.HostDir(host), "etc") }

// MasterAddr returns VIP:9421, the address every client uses to reach the master.
func (l *Lab) MasterAddr() string {
	return netip.AddrPortFrom(l.cfg.VIP, PortMasterCl).String()
}

// InitMaster prepares the master's DATA_PATH on host for a new, empty file system by writing
// the 8 bytes "MFSM NEW" to metadata.mfs, unless the directory already holds metadata or
// changelogs, which it leaves alone. StartMaster does not call it: a master that must not start
// empty (a promoted standby) fails to start instead.
func (l *Lab) InitMaster(host string) error {
	if _, err := l.host(host); err != nil {
		return err
	}
	dir := l.MasterDataDir(host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab %s: init master on %s: %w", l.cfg.Name, host, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("lab %s: init master on %s: %w", l.cfg.Name, host, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "metadata") || strings.HasPrefix(e.Name(), "changelog") {
			return nil
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, "metadata.mfs"), []byte(newFileSystem)); err != nil {
		return fmt.Errorf("lab %s: init master on %s: %w", l.cfg.Name, host, err)
	}
	return nil
}

// StartMaster writes the host's mfsmaster.cfg and runs `mfsmaster -f -c CFG EXTRA...` (e.g.
// "-a" to restore from changelogs after a crash). It returns once the master answers
// CLTOMA_INFO on the host's own address. The master listens on every address of the host, so
// it is reachable through the VIP once the host holds it.
func (l *Lab) StartMaster(ctx context.Context, host string, extraArgs ...string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	cfg, err := l.writeMasterConfig(host)
	if err != nil {
		return err
	}
	self := netip.AddrPortFrom(h.Addr, PortMasterCl).String()
	dial := l.Dialer(host)
	return l.Start(ctx, ProcSpec{
		Host: host,
		Role: RoleMaster,
		Argv: append([]string{l.cfg.MooseFS.Path("mfsmaster"), "-f", "-c", cfg}, extraArgs...),
		Ready: func(ctx context.Context) error {
			_, err := ProbeMaster(ctx, dial, self)
			return err
		},
	})
}

// StopMaster stops the master on host with SIGTERM and waits: a clean stop writes
// metadata.mfs. See Stop.
func (l *Lab) StopMaster(ctx context.Context, host string) error {
	return l.Stop(ctx, host, RoleMaster)
}

// StartMetalogger writes the host's mfsmetalogger.cfg and runs mfsmetalogger. It returns once
// the master (through the VIP) lists the host's address among its metaloggers.
func (l *Lab) StartMetalogger(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	cfg, err := l.writeMetaloggerConfig(host)
	if err != nil {
		return err
	}
	dial := l.Dialer(host)
	return l.Start(ctx, ProcSpec{
		Host: host,
		Role: RoleMetalogger,
		Argv: []string{l.cfg.MooseFS.Path("mfsmetalogger"), "-f", "-c", cfg},
		Ready: func(ctx context.Context) error {
			mls, err := Metaloggers(ctx, dial, l.MasterAddr())
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(mls, func(m MetaloggerInfo) bool { return m.Addr == h.Addr }) {
				return fmt.Errorf("master lists metaloggers %v, not %s", mls, h.Addr)
			}
			return nil
		},
	})
}

// StartChunkserver writes the host's mfschunkserver.cfg and mfshdd.cfg and runs
// mfschunkserver. It returns once the master (through the VIP) lists the host's address as a
// connected chunkserver with space, i.e. one that new chunks can be written to.
func (l *Lab) StartChunkserver(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	cfg, err := l.writeChunkserverConfig(host)
	if err != nil {
		return err
	}
	dial := l.Dialer(host)
	return l.Start(ctx, ProcSpec{
		Host: host,
		Role: RoleChunkserver,
		Argv: []string{l.cfg.MooseFS.Path("mfschunkserver"), "-f", "-c", cfg},
		Ready: func(ctx context.Context) error {
			css, err := Chunkservers(ctx, dial, l.MasterAddr())
			if err != nil {
				return err
			}
			for _, cs := range css {
				if cs.Addr.Addr() == h.Addr && cs.Connected && cs.TotalSpace > 0 {
					return nil
				}
			}
			return fmt.Errorf("master lists chunkservers %+v, none is %s connected with space", css, h.Addr)
		},
	})
}

// configFile renders KEY = VALUE lines.
func configFile(kv [][2]string) []byte {
	var b strings.Builder
	b.WriteString("# written by mfsha's deploy/lab; rewritten at every start\n")
	for _, p := range kv {
		fmt.Fprintf(&b, "%s = %s\n", p[0], p[1])
	}
	return []byte(b.String())
}

// common returns the settings every MooseFS daemon of the lab shares.
func (l *Lab) common(host, daemon, dataDir string) [][2]string {
	return [][2]string{
		{"WORKING_USER", "root"},
		{"WORKING_GROUP", "root"},
		{"SYSLOG_IDENT", daemon + "-" + l.cfg.Name + "-" + host},
		{"DATA_PATH", dataDir},
		{"NICE_LEVEL", "0"},
		{"LOCK_MEMORY", "0"},
	}
}

func (l *Lab) writeConfigs(host string, files map[string][]byte) error {
	dir := l.ConfigDir(host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab %s: config of %s: %w", l.cfg.Name, host, err)
	}
	for name, data := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("lab %s: config of %s: %w", l.cfg.Name, host, err)
		}
	}
	return nil
}

func (l *Lab) writeMasterConfig(host string) (string, error) {
	data := l.MasterDataDir(host)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", fmt.Errorf("lab %s: master on %s: %w", l.cfg.Name, host, err)
	}
	etc := l.ConfigDir(host)
	kv := append(l.common(host, "mfsmaster", data),
		[2]string{"EXPORTS_FILENAME", filepath.Join(etc, "mfsexports.cfg")},
		[2]string{"TOPOLOGY_FILENAME", filepath.Join(etc, "mfstopology.cfg")},
		// What a failover node asks for (README, "Deploying on real hosts"): the changelog
		// line is written before the client's answer, so no kill takes an acknowledged change
		// back. The keepalived baseline runs the same file.
		[2]string{"CHANGELOG_SAVE_MODE", "1"},
	)
	err := l.writeConfigs(host, map[string][]byte{
		"mfsmaster.cfg": configFile(kv),
		// "." is the meta file system (mfsmount -m: trash, undelete).
		"mfsexports.cfg":  []byte("* / rw,alldirs,admin,maproot=0:0\n* . rw\n"),
		"mfstopology.cfg": []byte("# empty: every host in one rack\n"),
	})
	return filepath.Join(etc, "mfsmaster.cfg"), err
}

func (l *Lab) writeMetaloggerConfig(host string) (string, error) {
	data := l.MetaloggerDataDir(host)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", fmt.Errorf("lab %s: metalogger on %s: %w", l.cfg.Name, host, err)
	}
	kv := append(l.common(host, "mfsmetalogger", data),
		[2]string{"MASTER_HOST", l.cfg.VIP.String()},
		[2]string{"MASTER_PORT", strconv.Itoa(PortMasterMeta)},
		[2]string{"BIND_HOST", l.hosts[host].Addr.String()},
		[2]string{"MASTER_RECONNECTION_DELAY", "1"},
	)
	err := l.writeConfigs(host, map[string][]byte{"mfsmetalogger.cfg": configFile(kv)})
	return filepath.Join(l.ConfigDir(host), "mfsmetalogger.cfg"), err
}

func (l *Lab) writeChunkserverConfig(host string) (string, error) {
	data := l.ChunkserverDataDir(host)
	hdd := filepath.Join(data, "hdd")
	if err := os.MkdirAll(hdd, 0o755); err != nil {
		return "", fmt.Errorf("lab %s: chunkserver on %s: %w", l.cfg.Name, host, err)
	}
	etc := l.ConfigDir(host)
	addr := l.hosts[host].Addr.String()
	kv := append(l.common(host, "mfschunkserver", data),
		[2]string{"HDD_CONF_FILENAME", filepath.Join(etc, "mfshdd.cfg")},
		// The lab's disk is shared by every chunkserver and whatever else runs here: leave
		// little, so a nearly full test machine still gets a working chunkserver (the master
		// needs more than one chunk, 64 MiB, free on it).
		[2]string{"HDD_LEAVE_SPACE_DEFAULT", "64MiB"},
		[2]string{"MASTER_HOST", l.cfg.VIP.String()},
		[2]string{"MASTER_PORT", strconv.Itoa(PortMasterChunk)},
		[2]string{"BIND_HOST", addr},
		[2]string{"CSSERV_LISTEN_HOST", addr},
		[2]string{"MASTER_RECONNECTION_DELAY", "1"},
	)
	err := l.writeConfigs(host, map[string][]byte{
		"mfschunkserver.cfg": configFile(kv),
		// "~": do not mark the folder damaged when the shared disk's size changes.
		"mfshdd.cfg": []byte("~" + hdd + "\n"),
	})
	return filepath.Join(etc, "mfschunkserver.cfg"), err
}
