package failover_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestClientGateHoldsOnlyTheClientPort, with real kernels in network namespaces: the gate a
// switchover closes on ma drops what other hosts send to the VIP's client port, on new and on
// established connections alike, and nothing else: another port of the VIP (the
// chunkservers') and ma's own connections (the node's health check) go through. Opened, the
// client port works again and the held packet arrives (the client's TCP resends it). Close
// twice and Open once leaves nothing behind.
func TestClientGateHoldsOnlyTheClientPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := mfstest.Network(ctx, t, fmt.Sprintf("gt%d", os.Getpid()%100000), lab.HostMasterA, lab.HostClient)
	if err := l.AddVIP(lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	client := netip.AddrPortFrom(l.VIP(), 19421)
	chunk := netip.AddrPortFrom(l.VIP(), 19420)
	accepted := map[netip.AddrPort]<-chan net.Conn{
		client: mfstest.Listen(t, l, lab.HostMasterA, client.String()),
		chunk:  mfstest.Listen(t, l, lab.HostMasterA, chunk.String()),
	}
	dial := func(host string, ap netip.AddrPort) error {
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		c, err := l.Dial(dctx, host, "tcp", ap.String())
		if err == nil {
			c.Close()
			<-accepted[ap]
		}
		return err
	}
	est, err := l.Dial(ctx, lab.HostClient, "tcp", client.String())
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	server := <-accepted[client]
	defer server.Close()

	gate, err := failover.NewClientGate(l.VIP(), client.Port())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.InHost(lab.HostMasterA, gate.Close); err != nil {
			t.Fatal(err)
		}
	}
	if err := dial(lab.HostClient, client); !timedOut(err) {
		t.Fatalf("a new connection from cl to %s through the closed gate: %v; want it held (a timeout), neither made nor refused", client, err)
	}
	if _, err := est.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := server.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a request on an established connection crossed the closed gate (%d bytes, %v)", n, err)
	}
	if err := dial(lab.HostClient, chunk); err != nil {
		t.Fatalf("the chunkservers' port %s through the closed gate: %v; want it open", chunk, err)
	}
	if err := dial(lab.HostMasterA, client); err != nil {
		t.Fatalf("ma's own connection to %s (the health check's way) through the closed gate: %v; want it open", client, err)
	}

	if err := l.InHost(lab.HostMasterA, gate.Open); err != nil {
		t.Fatal(err)
	}
	if err := dial(lab.HostClient, client); err != nil {
		t.Fatalf("a new connection from cl to %s once the gate is open: %v", client, err)
	}
	server.SetReadDeadline(time.Now().Add(10 * time.Second)) // the client's TCP resends the held byte
	if n, err := server.Read(make([]byte, 1)); n != 1 {
		t.Fatalf("the request held by the gate never arrived once it opened (%d bytes, %v)", n, err)
	}
	if err := l.InHost(lab.HostMasterA, gate.Open); err != nil {
		t.Fatalf("opening an open gate: %v", err)
	}
}

// timedOut reports whether err is a dial that ran out of time: neither made nor refused.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
