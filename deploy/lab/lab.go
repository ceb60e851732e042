package lab

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mfsha/mfsha/internal/moosefs"
)

// Host names of the production layout (see DefaultHosts).
const (
	HostMasterA = "ma" // mfsmaster + mfsmetalogger (later: mfsha ship)
	HostMasterB = "mb" // mfsmetalogger + mfschunkserver (later: mfsha standby)
	HostChunk   = "c1" // mfschunkserver
	HostClient  = "cl" // mfsmount
)

// Errors returned by Lab methods; match them with errors.Is.
var (
	ErrUnknownHost = errors.New("unknown host")
	ErrNotRunning  = errors.New("not running")
	ErrRunning     = errors.New("already running")
	ErrNotReady    = errors.New("not ready before the deadline")
	ErrExited      = errors.New("exited before it was ready")
	ErrNotRoot     = errors.New("the lab needs root")
	ErrVIPConflict = errors.New("VIP configured on more than one host")
)

// HostSpec describes one host (network namespace) of a lab.
type HostSpec struct {
	// Name is 1 to 6 lower-case letters or digits; "br" is reserved for the bridge.
	Name string
	// Addr is the host's own address; zero means the subnet's base address + 10 + the host's
	// index in Config.Hosts.
	Addr netip.Addr
}

// Config describes a lab. The zero values of the optional fields are replaced by defaults in New.
type Config struct {
	// Name prefixes every namespace, bridge and veth of the lab: 1 to 8 lower-case letters or
	// digits, no dash. Two labs alive at the same time must have different names.
	Name string
	// Dir is the state directory (configs, data dirs, logs, pid files, mount points). Required.
	Dir string
	// Subnet is the IPv4 subnet of the lab, /16 to /28; zero means 10.77.X.0/24 with X derived
	// from Name.
	Subnet netip.Prefix
	// Hosts lists the hosts to create; nil means DefaultHosts().
	Hosts []HostSpec
	// VIP is the address reserved for the master role; zero means the subnet's base + 100.
	VIP netip.Addr
	// StartTimeout bounds how long a Start method waits for its component to become ready;
	// zero means 30s.
	StartTimeout time.Duration
	// StopTimeout bounds how long a graceful stop waits before it kills; zero means 30s.
	StopTimeout time.Duration
	// MooseFS is the release whose binaries every MooseFS process of the lab runs (masters,
	// metaloggers, chunkservers, mounts, MakeMetadata); zero means Debian's 3.0.117 in /usr.
	// New fails when one of them is missing or reports another release.
	MooseFS moosefs.Dist
}

// DefaultHosts returns the production layout: ma, mb, c1, cl.
func DefaultHosts() []HostSpec {
	return []HostSpec{{Name: HostMasterA}, {Name: HostMasterB}, {Name: HostChunk}, {Name: HostClient}}
}

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9]{1,8}$`)
	hostNameRE = regexp.MustCompile(`^[a-z0-9]{1,6}$`)
)

// maxIfName is the longest Linux interface name (IFNAMSIZ - 1).
const maxIfName = 15

// withDefaults returns c with the defaults filled in. It does not validate.
func (c Config) withDefaults() Config {
	if !c.Subnet.IsValid() {
		h := fnv.New32a()
		h.Write([]byte(c.Name))
		c.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(h.Sum32() % 256), 0}), 24)
	}
	c.Subnet = c.Subnet.Masked()
	if c.Hosts == nil {
		c.Hosts = DefaultHosts()
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 30 * time.Second
	}
	if c.MooseFS == (moosefs.Dist{}) {
		c.MooseFS = moosefs.Installed[0]
	}
	if !c.Subnet.Addr().Is4() {
		return c // Validate rejects it; no address can be derived
	}
	base := c.Subnet.Addr().As4()
	nth := func(n int) netip.Addr {
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += uint32(n)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	hosts := make([]HostSpec, len(c.Hosts))
	for i, h := range c.Hosts {
		if !h.Addr.IsValid() {
			h.Addr = nth(10 + i)
		}
		hosts[i] = h
	}
	c.Hosts = hosts
	if !c.VIP.IsValid() {
		c.VIP = nth(100)
	}
	return c
}

// Validate checks every field and the rules between them, naming the field at fault.
func (c Config) Validate() error {
	if !labNameRE.MatchString(c.Name) {
		return fmt.Errorf("lab config: Name %q: want 1 to 8 lower-case letters or digits", c.Name)
	}
	if c.Dir == "" {
		return errors.New("lab config: Dir is required")
	}
	if !c.Subnet.Addr().Is4() || c.Subnet.Bits() < 16 || c.Subnet.Bits() > 28 {
		return fmt.Errorf("lab config: Subnet %s: want an IPv4 prefix of /16 to /28", c.Subnet)
	}
	if len(c.Hosts) == 0 {
		return errors.New("lab config: Hosts is empty")
	}
	inside := func(a netip.Addr) bool {
		if !c.Subnet.Contains(a) || a == c.Subnet.Addr() {
			return false
		}
		return c.Subnet.Contains(a.Next()) // not the broadcast address
	}
	if !inside(c.VIP) {
		return fmt.Errorf("lab config: VIP %s: not a host address of Subnet %s", c.VIP, c.Subnet)
	}
	seenName := map[string]bool{}
	seenAddr := map[netip.Addr]string{c.VIP: "VIP"}
	for i, h := range c.Hosts {
		if !hostNameRE.MatchString(h.Name) || h.Name == "br" {
			return fmt.Errorf("lab config: Hosts[%d].Name %q: want 1 to 6 lower-case letters or digits, not \"br\"", i, h.Name)
		}
		if n := len(c.Name) + 1 + len(h.Name); n > maxIfName {
			return fmt.Errorf("lab config: Hosts[%d].Name %q: interface name %s-%s is %d chars, Linux allows %d", i, h.Name, c.Name, h.Name, n, maxIfName)
		}
		if seenName[h.Name] {
			return fmt.Errorf("lab config: Hosts[%d].Name %q: duplicate", i, h.Name)
		}
		seenName[h.Name] = true
		if !inside(h.Addr) {
			return fmt.Errorf("lab config: Hosts[%d].Addr %s: not a host address of Subnet %s", i, h.Addr, c.Subnet)
		}
		if other, dup := seenAddr[h.Addr]; dup {
			return fmt.Errorf("lab config: Hosts[%d].Addr %s: already used by %s", i, h.Addr, other)
		}
		seenAddr[h.Addr] = h.Name
	}
	if c.StartTimeout < 0 || c.StopTimeout < 0 {
		return errors.New("lab config: StartTimeout and StopTimeout must not be negative")
	}
	return nil
}

// labBinaries are the MooseFS binaries a lab runs.
var labBinaries = []string{"mfsmaster", "mfsmetalogger", "mfschunkserver", "mfsmount"}

// MooseFS returns the release the lab's MooseFS processes run.
func (l *Lab) MooseFS() moosefs.Dist { return l.cfg.MooseFS }

// Lab is one MooseFS cluster in network namespaces. Create it with New, build the network with
// Up, start components, and tear everything down with Down.
type Lab struct {
	cfg   Config
	hosts map[string]HostSpec

	mu    sync.Mutex
	procs map[procKey]*proc // processes started by this Lab value
}

// New validates cfg (after filling in defaults), checks that the MooseFS release's binaries
// are installed, and returns a Lab. It creates nothing on the system but cfg.Dir; call Up to
// build the network.
func New(cfg Config) (*Lab, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.MooseFS.Check(context.Background(), labBinaries...); err != nil {
		return nil, fmt.Errorf("lab %s: %w", cfg.Name, err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab config: Dir %q: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab %s: %w", cfg.Name, err)
	}
	l := &Lab{cfg: cfg, hosts: map[string]HostSpec{}, procs: map[procKey]*proc{}}
	for _, h := range cfg.Hosts {
		l.hosts[h.Name] = h
	}
	return l, nil
}

// Config returns the lab's configuration with defaults filled in.
func (l *Lab) Config() Config { return l.cfg }

// Name returns the lab's name.
func (l *Lab) Name() string { return l.cfg.Name }

// Hosts returns the host names in configuration order.
func (l *Lab) Hosts() []string {
	names := make([]string, len(l.cfg.Hosts))
	for i, h := range l.cfg.Hosts {
		names[i] = h.Name
	}
	return names
}

// Has reports whether the lab has a host of that name.
func (l *Lab) Has(host string) bool { _, ok := l.hosts[host]; return ok }

// HostAddr returns the host's own address; the zero Addr if the host is unknown.
func (l *Lab) HostAddr(host string) netip.Addr { return l.hosts[host].Addr }

// VIP returns the virtual address reserved for the master role.
func (l *Lab) VIP() netip.Addr { return l.cfg.VIP }

// Subnet returns the lab's subnet.
func (l *Lab) Subnet() netip.Prefix { return l.cfg.Subnet }

// HostDir returns the state directory of a host.
func (l *Lab) HostDir(host string) string { return filepath.Join(l.cfg.Dir, host) }

// LogPath returns the file that collects the stdout and stderr of role on host.
func (l *Lab) LogPath(host string, role Role) string {
	return filepath.Join(l.HostDir(host), "log", string(role)+".log")
}

func (l *Lab) pidPath(host string, role Role) string {
	return filepath.Join(l.HostDir(host), "run", string(role)+".pid")
}

func (l *Lab) host(host string) (HostSpec, error) {
	h, ok := l.hosts[host]
	if !ok {
		return HostSpec{}, fmt.Errorf("lab %s: host %q: %w", l.cfg.Name, host, ErrUnknownHost)
	}
	return h, nil
}

// Up builds or repairs the lab's network: the bridge, one namespace per host with lo up, the
// veth pairs and the host addresses, and it sets every link up (undoing CutLink). It is
// idempotent: on a lab that is already up, even one made by another process, it only fixes
// what is missing. It leaves running processes, mounts and the VIP alone, except on a host
// whose own address had gone: there every address of eth0 (the VIP included) is replaced by
// the host's address, so that it is the primary one again.
func (l *Lab) Up(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab %s: up: %w", l.cfg.Name, ErrNotRoot)
	}
	for _, h := range l.cfg.Hosts {
		if err := os.MkdirAll(filepath.Join(l.HostDir(h.Name), "run"), 0o755); err != nil {
			return fmt.Errorf("lab %s: %w", l.cfg.Name, err)
		}
		if err := os.MkdirAll(filepath.Join(l.HostDir(h.Name), "log"), 0o755); err != nil {
			return fmt.Errorf("lab %s: %w", l.cfg.Name, err)
		}
	}
	return l.upNetwork(ctx)
}

// Down kills every process of the lab (SIGKILL), detaches every mount it made, and deletes its
// namespaces, veths and bridge. It works on a lab left by another process (an interrupted run)
// as long as Name and Dir are the same, and on a lab that is partly or not at all up. The state
// directory is kept. Errors are joined; Down does as much as it can.
func (l *Lab) Down(ctx context.Context) error {
	var errs []error
	// Processes known from pid files first: they may be outside any namespace we still see.
	for _, h := range l.cfg.Hosts {
		entries, _ := os.ReadDir(filepath.Join(l.HostDir(h.Name), "run"))
		for _, e := range entries {
			role, ok := strings.CutSuffix(e.Name(), ".pid")
			if !ok {
				continue
			}
			if err := l.KillProcess(ctx, h.Name, Role(role)); err != nil && !errors.Is(err, ErrNotRunning) {
				errs = append(errs, err)
			}
		}
	}
	if err := cleanup(ctx, l.cfg.Name, l.cfg.Dir); err != nil {
		errs = append(errs, err)
	}
	l.mu.Lock()
	procs := l.procs
	l.procs = map[procKey]*proc{}
	l.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("lab %s: down: wait for %s on %s (pid %d): %w", l.cfg.Name, p.key.role, p.key.host, p.pid, ctx.Err()))
		}
	}
	// Pid files of processes that died with their namespace.
	for _, h := range l.cfg.Hosts {
		l.forgetHost(h.Name)
	}
	return errors.Join(errs...)
}

// Cleanup removes everything a lab named name left on the system: it SIGKILLs every process in
// the namespaces /run/netns/NAME-*, detaches the FUSE mounts the lab made, and deletes those
// namespaces and every link whose name starts with "NAME-". It needs no state directory, so it
// can clean up after an interrupted run. It succeeds when there is nothing to clean.
func Cleanup(ctx context.Context, name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("lab cleanup: name %q: want 1 to 8 lower-case letters or digits", name)
	}
	return cleanup(ctx, name, "")
}

// cleanup is Cleanup, also detaching any mount under dir when dir is not empty.
func cleanup(ctx context.Context, name, dir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab %s: cleanup: %w", name, ErrNotRoot)
	}
	var errs []error
	nsPaths, err := labNetnsPaths(name)
	if err != nil {
		errs = append(errs, err)
	}
	if err := killInNetns(ctx, nsPaths); err != nil {
		errs = append(errs, fmt.Errorf("lab %s: %w", name, err))
	}
	if err := unmountLab(name, dir); err != nil {
		errs = append(errs, fmt.Errorf("lab %s: %w", name, err))
	}
	if err := deleteLinks(name); err != nil {
		errs = append(errs, fmt.Errorf("lab %s: %w", name, err))
	}
	for _, p := range nsPaths {
		if err := deleteNetns(p); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
