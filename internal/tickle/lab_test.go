package tickle_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/tickle"
)

// TestTickleResetsClientsOfADeadHost, with real kernels in network namespaces: a client on cl
// holds two connections to a server on the VIP on ma; ma goes silent (its link cut, as at a
// power-off), mb takes the VIP and announces it, and tickles one of the two connections (found
// on ma by Established). The tickled one must end with a reset at once; the other one, which
// nobody tickled, must still be waiting: without tickles the client learns nothing until its
// own TCP resends.
func TestTickleResetsClientsOfADeadHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := mfstest.Network(ctx, t, fmt.Sprintf("tk%d", os.Getpid()%100000), lab.HostMasterA, lab.HostMasterB, lab.HostClient)
	if err := l.AddVIP(lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(l.VIP(), 19421)
	accepted := mfstest.Listen(t, l, lab.HostMasterA, vip.String())
	var err error
	var clients [2]net.Conn
	for i := range clients {
		if clients[i], err = l.Dial(ctx, lab.HostClient, "tcp", vip.String()); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
		<-accepted
	}
	var conns []tickle.Conn
	if err := l.InHost(lab.HostMasterA, func() (err error) { conns, err = tickle.Established(l.VIP()); return err }); err != nil {
		t.Fatal(err)
	}
	target := netip.MustParseAddrPort(clients[0].LocalAddr().String())
	var tickled []tickle.Conn
	for _, c := range conns {
		if c.Remote == target && c.Local == vip {
			tickled = append(tickled, c)
		}
	}
	if len(conns) != 2 || len(tickled) != 1 {
		t.Fatalf("Established(%s) on ma: %v; want the two connections from cl, one of them %s", l.VIP(), conns, target)
	}

	// ma goes silent; mb takes the VIP.
	if err := l.CutLink(lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	if err := l.AddVIP(lab.HostMasterB); err != nil {
		t.Fatal(err)
	}
	if err := l.AnnounceVIP(lab.HostMasterB); err != nil {
		t.Fatal(err)
	}
	var sent int
	start := time.Now()
	if err := l.InHost(lab.HostMasterB, func() (err error) { sent, err = tickle.Send(tickled); return err }); err != nil || sent != 1 {
		t.Fatalf("tickle from mb: %d sent, %v", sent, err)
	}
	read := func(c net.Conn, within time.Duration) error {
		c.SetReadDeadline(time.Now().Add(within))
		_, err := c.Read(make([]byte, 1))
		return err
	}
	if err := read(clients[0], 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the tickled connection: read %v, want a reset (ECONNRESET)", err)
	}
	t.Logf("the tickled connection was reset %v after the tickle", time.Since(start).Round(time.Millisecond))
	var ne net.Error
	if err := read(clients[1], time.Second); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the connection nobody tickled: read %v; want it still waiting (a timeout)", err)
	}
}
