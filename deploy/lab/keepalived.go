package lab

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
)

// RoleKeepalived is the role of the baseline's keepalived processes.
const RoleKeepalived Role = "keepalived"

// StartKeepalived runs the baseline mfsha is measured against: what MooseFS users glue together
// today. keepalived (VRRP) on ma (priority 100) and mb (priority 80), advert_int 1, nopreempt;
// on ma a check script every 2 s (the master's client port accepts; fall 2, rise 2) whose
// failure puts ma in FAULT and releases the VIP; on mb a notify_master script that copies the
// local metalogger's files into the master's DATA_PATH and runs `mfsmaster -a` (restore from
// them, then serve). keepalived, not the lab, owns the VIP: do not AddVIP. It returns once ma
// holds the VIP and mb's keepalived runs. ma's master should be running first.
func (l *Lab) StartKeepalived(ctx context.Context) error {
	for _, h := range []string{HostMasterA, HostMasterB} {
		if _, err := l.host(h); err != nil {
			return err
		}
	}
	h := fnv.New32a()
	h.Write([]byte(l.cfg.Name))
	vrid := 1 + h.Sum32()%254
	bits := l.cfg.Subnet.Bits()

	masterCfg, err := l.writeMasterConfig(HostMasterB)
	if err != nil {
		return err
	}
	etcA, etcB := l.ConfigDir(HostMasterA), l.ConfigDir(HostMasterB)
	check := filepath.Join(etcA, "keepalived-check.sh")
	promote := filepath.Join(etcB, "keepalived-promote.sh")
	scripts := map[string]string{
		check: "#!/bin/bash\n# keepalived check: the master accepts clients on its port.\nexec timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9421'\n",
		promote: fmt.Sprintf(`#!/bin/sh
# keepalived notify_master: make this host's metalogger files a master's and start it
# (the usual glue: copy changelog_ml*, metadata_ml.mfs.back, then mfsmaster -a).
ML=%q
M=%q
mkdir -p "$M"
cp -f "$ML"/changelog_ml*.mfs "$ML"/metadata_ml.mfs.back "$M"/ 2>/dev/null
exec %q -c %q -a >>%q 2>&1
`, l.MetaloggerDataDir(HostMasterB), l.MasterDataDir(HostMasterB), l.cfg.MooseFS.Path("mfsmaster"), masterCfg, l.LogPath(HostMasterB, "keepalived-promote")),
	}
	for path, text := range scripts {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			return fmt.Errorf("lab %s: keepalived: %w", l.cfg.Name, err)
		}
	}
	conf := func(host string, priority int, extra string) (string, error) {
		text := fmt.Sprintf(`global_defs {
    router_id %s-%s
    script_user root
}
vrrp_script chk_mfsmaster {
    script "%s"
    interval 2
    fall 2
    rise 2
}
vrrp_instance mfs {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int 1
    nopreempt
    virtual_ipaddress {
        %s/%d dev eth0
    }
%s}
`, l.cfg.Name, host, check, vrid, priority, l.cfg.VIP, bits, extra)
		p := filepath.Join(l.ConfigDir(host), "keepalived.conf")
		return p, os.WriteFile(p, []byte(text), 0o644)
	}
	start := func(host, cfg string) error {
		run := filepath.Join(l.HostDir(host), "run")
		if err := os.MkdirAll(run, 0o755); err != nil {
			return err
		}
		argv := []string{"keepalived", "-n", "-l", "-D", "-P", "-f", cfg,
			"-p", filepath.Join(run, "keepalived-main.pid"), "-r", filepath.Join(run, "keepalived-vrrp.pid")}
		return l.Start(ctx, ProcSpec{Host: host, Role: RoleKeepalived, Argv: argv})
	}
	cfgA, err := conf(HostMasterA, 100, "    track_script {\n        chk_mfsmaster\n    }\n")
	if err != nil {
		return err
	}
	cfgB, err := conf(HostMasterB, 80, fmt.Sprintf("    notify_master %q\n", promote))
	if err != nil {
		return err
	}
	if err := start(HostMasterA, cfgA); err != nil {
		return err
	}
	if err := poll(ctx, func() bool { o, err := l.VIPOwner(); return err == nil && o == HostMasterA }); err != nil {
		return fmt.Errorf("lab %s: keepalived on ma never took the VIP: %w\n%s", l.cfg.Name, err, l.logTail(HostMasterA, RoleKeepalived))
	}
	if err := start(HostMasterB, cfgB); err != nil {
		return err
	}
	return nil
}

// keepalivedState is the VRRP state keepalived last logged on host ("MASTER", "BACKUP",
// "FAULT"), for error messages.
func (l *Lab) keepalivedState(host string) string {
	b, _ := os.ReadFile(l.LogPath(host, RoleKeepalived))
	state := "unknown"
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, "Entering "); i >= 0 {
			state = strings.Fields(line[i+len("Entering "):])[0]
		}
	}
	return state
}
