// Package failsafe is the bookkeeping of mfsha's failsafe mode (failover/DESIGN.md, "Failsafe:
// keeping a healthy master through a NATS election"): the lease holder keeps serving while
// NATS cannot take its renewals only as long as every other failover node has promised, over
// a direct channel, not to take the lease for a while.
//
// The package holds the rules, not the transport: the signed messages (Hold, Promise), a
// member's side (Promiser: what it promised, whether it may take the lease) and the holder's
// side (Coverage: until when every member's promise covers it). All times are monotonic
// readings of the local clock (time.Now()); no wall clock is compared across hosts.
package failsafe

import (
	"fmt"
	"time"
)

// Drift bounds the rate error of any host's clock (ρ): 0.1 %, far above what NTP-disciplined or
// even free-running quartz clocks drift. The holder counts a promise of P as P·(1 − 2ρ).
const Drift = 0.001

// MaxHold bounds the promise a member accepts to give: a signed hold is from a cluster node,
// but a bound keeps a wrong setting from blocking failovers for long.
const MaxHold = time.Minute

// Config holds the failsafe settings. The names in errors are the config keys.
type Config struct {
	// Hold is the promise a holder asks for (FAILSAFE_HOLD): a member that answers does not
	// take the lease for Hold after it received the request.
	Hold time.Duration
	// Every is how often the holder asks every member (FAILSAFE_EVERY), always, not only after
	// a failed renewal, so that it holds fresh promises when NATS fails.
	Every time.Duration
	// Timeout bounds one request to one member (FAILSAFE_TIMEOUT).
	Timeout time.Duration
	// StopTimeout is the time the holder needs to fence itself (MASTER_STOP_TIMEOUT): it
	// starts fencing that long before its coverage ends.
	StopTimeout time.Duration
}

// DefaultConfig: a 3 s promise asked for every 200 ms, each request bounded by 300 ms, with the
// failover node's default MASTER_STOP_TIMEOUT of 2 s. A dead holder's lease is taken after
// max(LEASE_TTL, Hold) (5 s by default): failsafe does not slow failovers while Hold <= LEASE_TTL.
func DefaultConfig() Config {
	return Config{Hold: 3 * time.Second, Every: 200 * time.Millisecond, Timeout: 300 * time.Millisecond, StopTimeout: 2 * time.Second}
}

// Covered is the part of a promise of d that the holder may count on: d·(1 − 2ρ). A member
// measures d on its clock from when it received the request, at or after the holder sent it;
// the holder measures from the send. With both clocks within ρ of real time, the holder's
// Covered(d) ends (real time at most Covered(d)/(1−ρ)) before the member's promise does (at
// least d/(1+ρ)), because (1−2ρ)(1+ρ) < 1−ρ.
func Covered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 - 2*Drift))
}

// Validate checks each setting and the liveness rule between them, naming the keys:
// Every + Timeout + StopTimeout <= Covered(Hold), i.e. a member answers the next request before
// the holder must start fencing. Safety does not depend on it; without it failsafe would lapse
// between two requests.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"FAILSAFE_HOLD", c.Hold}, {"FAILSAFE_EVERY", c.Every}, {"FAILSAFE_TIMEOUT", c.Timeout}, {"MASTER_STOP_TIMEOUT", c.StopTimeout}} {
		if f.d <= 0 {
			return fmt.Errorf("%s = %s: want a positive duration", f.name, f.d)
		}
	}
	if c.Hold > MaxHold {
		return fmt.Errorf("FAILSAFE_HOLD = %s: at most %s (members refuse longer promises)", c.Hold, MaxHold)
	}
	if need := c.Every + c.Timeout + c.StopTimeout; need > Covered(c.Hold) {
		return fmt.Errorf("FAILSAFE_EVERY + FAILSAFE_TIMEOUT + MASTER_STOP_TIMEOUT = %s + %s + %s = %s must be at most FAILSAFE_HOLD·(1 − 2·%g) = %s: the holder would fence between two answers",
			c.Every, c.Timeout, c.StopTimeout, need, Drift, Covered(c.Hold).Round(time.Millisecond))
	}
	return nil
}
