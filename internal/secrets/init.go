// Package secrets makes a MooseFS cluster's mfsha secrets once (`mfsha init`): the CA and
// certificates of its NATS servers, an nkey user per role, the cluster signing key, and ready
// configuration files for each role that name them all.
package secrets

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/mfsha/mfsha/internal/durable"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// Host is one NATS server host: its name (the server name, NATS_SERVER_NAME) and the address
// clients and routes reach it at (an IP address or a DNS name).
type Host struct{ Name, Addr string }

// Options say what Init makes.
type Options struct {
	Cluster string
	Out     string // directory to write; created 0700
	// Path is the directory the files will be installed in on the hosts, used in every path
	// the configuration files name; empty: Out, made absolute.
	Path  string
	Hosts []Host
	Force bool      // replace existing files
	Now   time.Time // zero: time.Now
}

// File names Init writes, besides the per-host ones (HostCert, HostKey, HostConfig,
// HostServerConf) and a seed per role (SeedFile).
const (
	CACert      = "ca.crt"
	CAKey       = "ca.key"
	UsersFile   = "nats-users.cfg"
	ShipConfig  = "ship.cfg"
	StandbyCfg  = "standby.cfg"
	RestoreCfg  = "restore.cfg"
	StatusCfg   = "status.cfg"
	AdminConfig = "admin.cfg"
)

// SeedFile is the nkey seed file of role.
func SeedFile(r natsconn.Role) string { return string(r) + ".nk" }

// HostCert and HostKey are the TLS certificate and key of the NATS server on host.
func HostCert(host string) string { return "nats-" + host + ".crt" }
func HostKey(host string) string  { return "nats-" + host + ".key" }

// HostConfig is the `mfsha nats --config` file of host; HostServerConf is the same server as
// a nats-server configuration, for operators who run nats-server itself.
func HostConfig(host string) string     { return "nats-" + host + ".cfg" }
func HostServerConf(host string) string { return "nats-server-" + host + ".conf" }

// Ports of the NATS servers in the configurations Init writes.
const (
	ClientPort = 4222
	RoutePort  = 6222
)

var hostRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseHosts parses NAME=ADDR items (--nats-hosts n1=10.0.0.1,n2=10.0.0.2,n3=10.0.0.3).
func ParseHosts(items []string) ([]Host, error) {
	var hosts []Host
	seen := map[string]bool{}
	for _, it := range items {
		name, addr, ok := strings.Cut(strings.TrimSpace(it), "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("NATS host %q: want NAME=ADDRESS", it)
		}
		if !hostRE.MatchString(name) {
			return nil, fmt.Errorf("NATS host %q: name must be 1-64 characters of A-Z a-z 0-9 _ -", it)
		}
		if strings.ContainsAny(addr, " :/,") {
			return nil, fmt.Errorf("NATS host %q: address must be an IP address or a DNS name without port", it)
		}
		if seen[name] {
			return nil, fmt.Errorf("NATS host %q: name given twice", name)
		}
		seen[name] = true
		hosts = append(hosts, Host{Name: name, Addr: addr})
	}
	return hosts, nil
}

// file is one file Init writes.
type file struct {
	name string
	mode os.FileMode
	data []byte
}

// Init makes the secrets and configurations and writes them into o.Out. It refuses to replace
// any existing file unless o.Force: a cluster whose CA, users or signing key change under it
// stops (servers refuse the old credentials, readers the old signatures). It returns the
// names of the files written; their content is never printed or logged.
func Init(o Options) ([]string, error) {
	if err := stream.ValidCluster(o.Cluster); err != nil {
		return nil, fmt.Errorf("--cluster: %w", err)
	}
	if o.Out == "" {
		return nil, errors.New("--out: required")
	}
	if len(o.Hosts) == 0 {
		return nil, errors.New("--nats-hosts: at least one NAME=ADDRESS")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Path == "" {
		abs, err := filepath.Abs(o.Out)
		if err != nil {
			return nil, fmt.Errorf("--out %s: %w", o.Out, err)
		}
		o.Path = abs
	}
	files, err := build(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o700); err != nil {
		return nil, fmt.Errorf("--out %s: %w", o.Out, err)
	}
	if err := os.Chmod(o.Out, 0o700); err != nil {
		return nil, fmt.Errorf("--out %s: %w", o.Out, err)
	}
	if !o.Force {
		var exist []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(o.Out, f.name)); err == nil {
				exist = append(exist, f.name)
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("--out %s already holds %s: not replaced (--force replaces them, and every host must then get the new files)", o.Out, strings.Join(exist, ", "))
		}
	}
	var names []string
	for _, f := range files {
		if err := durable.WriteFile(filepath.Join(o.Out, f.name), f.data, f.mode); err != nil {
			return nil, err
		}
		names = append(names, f.name)
	}
	sort.Strings(names)
	return names, nil
}

// build makes every file's content, in memory.
func build(o Options) ([]file, error) {
	ca, err := newAuthority(o.Cluster, o.Now)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.keyPEM()
	if err != nil {
		return nil, err
	}
	files := []file{{CACert, 0o644, ca.certPEM()}, {CAKey, 0o600, caKey}}
	for _, h := range o.Hosts {
		cert, key, err := ca.issueServer(h.Name, h.Addr, o.Now)
		if err != nil {
			return nil, err
		}
		files = append(files, file{HostCert(h.Name), 0o644, cert}, file{HostKey(h.Name), 0o600, key})
	}

	users := natsconn.Users{Cluster: o.Cluster, Keys: map[natsconn.Role]string{}}
	for _, r := range natsconn.Roles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", r, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", r, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", r, err)
		}
		users.Keys[r] = pub
		files = append(files, file{SeedFile(r), 0o600, append(seed, '\n')})
	}
	files = append(files, file{UsersFile, 0o644, users.Format()})

	priv, err := sign.Generate()
	if err != nil {
		return nil, err
	}
	privPEM, pubPEM, err := signingPEM(priv)
	if err != nil {
		return nil, err
	}
	files = append(files, file{sign.PrivateFile, 0o600, privPEM}, file{sign.PublicFile, 0o644, pubPEM})

	for _, h := range o.Hosts {
		files = append(files, file{HostConfig(h.Name), 0o644, natsConfig(o, h)})
		files = append(files, file{HostServerConf(h.Name), 0o644, serverConf(o, h, users)})
	}
	files = append(files,
		file{ShipConfig, 0o644, shipConfig(o)},
		file{StandbyCfg, 0o644, standbyConfig(o)},
		file{RestoreCfg, 0o644, restoreConfig(o)},
		file{StatusCfg, 0o644, statusConfig(o)},
		file{AdminConfig, 0o644, adminConfig(o)})
	return files, nil
}

// signingPEM encodes the cluster signing key pair in internal/sign's file formats, in memory:
// the private key is written only to Out.
func signingPEM(priv ed25519.PrivateKey) (privPEM, pubPEM []byte, err error) {
	if privPEM, err = sign.EncodePrivate(priv); err != nil {
		return nil, nil, fmt.Errorf("signing key: %w", err)
	}
	if pubPEM, err = sign.EncodePublic(priv.Public().(ed25519.PublicKey)); err != nil {
		return nil, nil, fmt.Errorf("signing key: %w", err)
	}
	return privPEM, pubPEM, nil
}
