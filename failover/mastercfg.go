package failover

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// masterConfig is what the agent needs from mfsmaster.cfg.
type masterConfig struct {
	dataPath, probeAddr string
	// changelogSaveMode is CHANGELOG_SAVE_MODE: 0 (MooseFS's default) hands each changelog
	// line to a background writer process, 1 writes it before the client's answer, 2 also
	// fsyncs it (see ChangelogSaveMode).
	changelogSaveMode int
}

// readMasterConfig parses mfsmaster.cfg as mfsmaster 3.0.117 does (mfscommon/cfg.c): a line
// whose first non-blank character is # is a comment; the value runs to the end of the line,
// a # included, so a value with # is refused for the keys read here rather than guessed at.
func readMasterConfig(path string) (masterConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return masterConfig{}, fmt.Errorf("mfsmaster config: %w", err)
	}
	type value struct {
		s    string
		line int
	}
	kv := map[string]value{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return masterConfig{}, fmt.Errorf("%s line %d: want KEY = value, got %q", path, n+1, line)
		}
		kv[k] = value{strings.TrimSpace(v), n + 1}
	}
	get := func(key, def string) (string, error) {
		v, ok := kv[key]
		switch {
		case !ok:
			return def, nil
		case v.s == "":
			return "", fmt.Errorf("%s line %d: %s is empty", path, v.line, key)
		case strings.Contains(v.s, "#"):
			return "", fmt.Errorf("%s line %d: %s = %q: mfsmaster would keep the # and what follows "+
				"in the value; put comments on their own line", path, v.line, key, v.s)
		}
		return v.s, nil
	}
	var mc masterConfig
	if mc.dataPath, err = get("DATA_PATH", "/var/lib/mfs"); err != nil {
		return mc, err
	}
	if !filepath.IsAbs(mc.dataPath) {
		return mc, fmt.Errorf("%s line %d: DATA_PATH = %s: want an absolute path", path, kv["DATA_PATH"].line, mc.dataPath)
	}
	// MATOCU_* are the deprecated names, used only when no MATOCL_* is set (matoclserv.c).
	hostKey, portKey := "MATOCL_LISTEN_HOST", "MATOCL_LISTEN_PORT"
	_, clHost := kv[hostKey]
	_, clPort := kv[portKey]
	_, cuHost := kv["MATOCU_LISTEN_HOST"]
	_, cuPort := kv["MATOCU_LISTEN_PORT"]
	if !clHost && !clPort && (cuHost || cuPort) {
		hostKey, portKey = "MATOCU_LISTEN_HOST", "MATOCU_LISTEN_PORT"
	}
	host, err := get(hostKey, "*")
	if err != nil {
		return mc, err
	}
	port, err := get(portKey, "9421")
	if err != nil {
		return mc, err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return mc, fmt.Errorf("%s line %d: %s = %s: want a port number", path, kv[portKey].line, portKey, port)
	}
	mode, err := get("CHANGELOG_SAVE_MODE", "0")
	if err != nil {
		return mc, err
	}
	// mfsmaster would take any other value as 0 with a warning in its log: refused here, so
	// that the mode the node reports is the mode mfsmaster runs.
	switch mode {
	case "0", "1", "2":
		mc.changelogSaveMode = int(mode[0] - '0')
	default:
		return mc, fmt.Errorf("%s line %d: CHANGELOG_SAVE_MODE = %s: want 0, 1 or 2", path, kv["CHANGELOG_SAVE_MODE"].line, mode)
	}
	if host == "*" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	mc.probeAddr = net.JoinHostPort(host, port)
	return mc, nil
}
