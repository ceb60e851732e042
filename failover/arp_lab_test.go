package failover_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
)

// checkAnnouncements checks the gratuitous ARPs a client saw from the new master's host
// (mac) after since, against the schedule the product uses (failover.DefaultConfig's Announce
// and Burst; the mfsha command takes them from there). A promotion announces twice: when it
// adds the VIP, and again from the start once mfsmaster serves (the first run is cut short
// then). So: the last len(schedule) steps are the whole second run, each step burst ARP
// requests and burst replies; any earlier packets are whole steps of the first run. The
// spacing is logged, and only its shape asserted (the run spreads over seconds, not one burst).
func checkAnnouncements(t *testing.T, got []ha.Gratuitous, mac net.HardwareAddr, since time.Time) {
	t.Helper()
	def := failover.DefaultConfig()
	schedule, burst := def.Announce, def.Burst
	step := 2 * burst
	var from []ha.Gratuitous
	for _, g := range got {
		if g.At.After(since) && g.SenderMAC.String() == mac.String() {
			from = append(from, g)
		}
	}
	want := len(schedule) * step
	if len(from) < want || len(from)%step != 0 {
		t.Fatalf("%d gratuitous ARPs from %s after the takeover; want a whole run of %d (%d steps of %d requests and %d replies), after whole steps of the first run",
			len(from), mac, want, len(schedule), burst, burst)
	}
	first, second := from[:len(from)-want], from[len(from)-want:]
	var offsets []string
	for i := range schedule {
		s := second[i*step : (i+1)*step]
		var req, rep int
		for _, g := range s {
			switch g.Operation {
			case arp.OperationRequest:
				req++
			case arp.OperationReply:
				rep++
			}
		}
		if req != burst || rep != burst {
			t.Errorf("step %d of the announcement: %d requests and %d replies; want %d of each", i, req, rep, burst)
		}
		offsets = append(offsets, fmt.Sprintf("%v (+%v)", s[0].At.Sub(second[0].At).Round(time.Millisecond), s[len(s)-1].At.Sub(s[0].At).Round(time.Microsecond)))
	}
	t.Logf("gratuitous ARPs from the new master: %d steps of the first run, then the full run at offsets %s (schedule %v; each step's own spread in parentheses)",
		len(first)/step, strings.Join(offsets, ", "), schedule)
	// A late step makes gaps longer, never shorter: the last step is at least the schedule's
	// last offset minus a late first step's delay, which the previous offset bounds with room.
	last := schedule[len(schedule)-1]
	if span := second[len(second)-1].At.Sub(second[0].At); span < last-schedule[len(schedule)-2] {
		t.Errorf("the announcement spans %v; the schedule's steps go to %v: they were not spread out", span, last)
	}
}
