package failover

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Config of a Node. Every duration and count is checked by Validate, which names the setting
// (the names are those of the config file).
type Config struct {
	Cluster string // names the lease bucket (see stream.LeaseBucket)
	Name    string // NODE_NAME: this node, unique in the cluster
	Addr    string // NODE_ADDR: this node's own address, shown by `mfsha status`

	VIP       netip.Prefix // VIP: the master's virtual IP with its prefix length, e.g. 10.0.0.100/24
	Interface string       // INTERFACE: where the VIP goes

	// The lease. The holder renews it every RenewEvery, each attempt bounded by RenewTimeout;
	// once RenewEvery + 2*RenewTimeout have passed since the last renewal that succeeded, it
	// fences itself, which takes at most MasterStopTimeout: so all of it ends before the lease
	// can expire if RenewEvery + 2*RenewTimeout + MasterStopTimeout <= LeaseTTL (checked).
	LeaseTTL          time.Duration // LEASE_TTL
	RenewEvery        time.Duration // RENEW_EVERY
	RenewTimeout      time.Duration // RENEW_TIMEOUT
	MasterStopTimeout time.Duration // MASTER_STOP_TIMEOUT: a clean stop, then SIGKILL

	// Health of the local master: a probe every CheckEvery bounded by CheckTimeout;
	// CheckFailures consecutive failures mean down (its process exiting means down at once).
	CheckEvery    time.Duration // CHECK_EVERY
	CheckTimeout  time.Duration // CHECK_TIMEOUT
	CheckFailures int           // CHECK_FAILURES

	// DrainTimeout bounds how long a master that failed waits for its shipper to ship the lines
	// its files hold before it releases the lease (a standby's metalogger has them too).
	DrainTimeout time.Duration // DRAIN_TIMEOUT

	// StartGrace: a standby that has just started does not take a lease that is free (rather
	// than handed to it) before this has passed, so that a master node starting at the same
	// time, with newer files of its own, takes it first.
	StartGrace time.Duration // START_GRACE

	// ArchiveDir receives the MooseFS files of this host's master DATA_PATH when the node
	// joins as a standby (never deleted, never shipped).
	ArchiveDir string // ARCHIVE_PATH

	// LocalNATSServer, when set, is the name of the NATS server on this host: while this node
	// is the master, the lease bucket's stream leader is asked to move off it.
	LocalNATSServer string // NATS_LOCAL_SERVER

	// Announce is when the VIP's gratuitous ARPs go out after it is added (offsets), Burst how
	// many of each form at each step.
	Announce []time.Duration
	Burst    int
}

// DefaultConfig: a dead host is replaced within LeaseTTL (5 s) plus the promotion, a crashed
// mfsmaster at once (its exit is seen), a hung one after three failed checks (1.5 to 4.5 s).
// The health check is not tighter on purpose: mfsmaster is single-threaded and can pause for
// a second under load (seen in the lab under -race), and a false failover costs more than a
// second of a hung master.
func DefaultConfig() Config {
	return Config{
		Interface:         "eth0",
		LeaseTTL:          5 * time.Second,
		RenewEvery:        time.Second,
		RenewTimeout:      500 * time.Millisecond,
		MasterStopTimeout: 2 * time.Second,
		CheckEvery:        500 * time.Millisecond,
		CheckTimeout:      time.Second,
		CheckFailures:     3,
		DrainTimeout:      2 * time.Second,
		StartGrace:        5 * time.Second,
		Announce:          []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second},
		Burst:             3,
	}
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks every field and the rule between the lease timings.
func (c Config) Validate() error {
	switch {
	case !nodeNameRE.MatchString(c.Name):
		return fmt.Errorf("NODE_NAME = %q: want 1-64 characters of A-Z a-z 0-9 _ -", c.Name)
	case !c.VIP.IsValid() || !c.VIP.Addr().Is4():
		return fmt.Errorf("VIP = %q: want an IPv4 address with its prefix length, e.g. 10.0.0.100/24", c.VIP)
	case c.VIP.Bits() < 8 || c.VIP.Bits() > 32:
		return fmt.Errorf("VIP = %s: prefix length %d: want 8 to 32 (that of the interface's subnet)", c.VIP, c.VIP.Bits())
	case c.Interface == "":
		return errors.New("INTERFACE: not set")
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("LEASE_TTL = %v: want at least 1s", c.LeaseTTL)
	case c.RenewEvery <= 0:
		return fmt.Errorf("RENEW_EVERY = %v: want more than 0", c.RenewEvery)
	case c.RenewTimeout <= 0:
		return fmt.Errorf("RENEW_TIMEOUT = %v: want more than 0", c.RenewTimeout)
	case c.MasterStopTimeout <= 0:
		return fmt.Errorf("MASTER_STOP_TIMEOUT = %v: want more than 0", c.MasterStopTimeout)
	case c.RenewEvery+2*c.RenewTimeout+c.MasterStopTimeout > c.LeaseTTL:
		return fmt.Errorf("RENEW_EVERY + 2*RENEW_TIMEOUT + MASTER_STOP_TIMEOUT = %v + 2*%v + %v = %v is more than LEASE_TTL = %v: "+
			"a master cut off from NATS could still be serving when its lease expires and a standby takes over",
			c.RenewEvery, c.RenewTimeout, c.MasterStopTimeout, c.RenewEvery+2*c.RenewTimeout+c.MasterStopTimeout, c.LeaseTTL)
	case c.CheckEvery <= 0 || c.CheckTimeout <= 0:
		return fmt.Errorf("CHECK_EVERY = %v, CHECK_TIMEOUT = %v: want more than 0", c.CheckEvery, c.CheckTimeout)
	case c.CheckFailures < 1:
		return fmt.Errorf("CHECK_FAILURES = %d: want at least 1", c.CheckFailures)
	case c.DrainTimeout <= 0:
		return fmt.Errorf("DRAIN_TIMEOUT = %v: want more than 0", c.DrainTimeout)
	case c.StartGrace < 0:
		return fmt.Errorf("START_GRACE = %v: want 0 or more", c.StartGrace)
	case c.ArchiveDir == "":
		return errors.New("ARCHIVE_PATH: not set")
	case c.Burst < 1:
		return fmt.Errorf("ARP burst = %d: want at least 1", c.Burst)
	}
	return nil
}
