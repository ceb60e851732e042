package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// listenIn opens a TCP listener on the host's own address, inside its namespace, and returns
// its address and the connections it accepts; it closes them all at cleanup.
func listenIn(t *testing.T, l *Lab, host string) (string, <-chan net.Conn) {
	t.Helper()
	var ln net.Listener
	err := inNetns(l.NetnsPath(host), func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(l.HostAddr(host), 0).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s: %v", host, err)
	}
	conns := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), conns
}

func TestCutRoutes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test builds network namespaces: it needs root (run `make test` as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := newLab(t, "r", []HostSpec{{Name: "ma"}, {Name: "mb"}, {Name: "cl"}})
	timed(t, "up", func() error { return l.Up(ctx) })
	addr := map[string]string{}
	accepted := map[string]<-chan net.Conn{}
	for _, h := range l.Hosts() {
		addr[h], accepted[h] = listenIn(t, l, h)
	}
	// dial opens a TCP connection from one host to another's listener, giving up after 500ms.
	dial := func(from, to string) (net.Conn, error) {
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		return l.Dial(short, from, "tcp", addr[to])
	}
	reach := func(from, to string) error {
		c, err := dial(from, to)
		if err == nil {
			c.Close()
		}
		return err
	}
	mustReach := func(when string, pairs ...[2]string) {
		t.Helper()
		for _, p := range pairs {
			if err := reach(p[0], p[1]); err != nil {
				t.Fatalf("%s: %s cannot reach %s: %v", when, p[0], p[1], err)
			}
		}
	}
	all := [][2]string{{"ma", "mb"}, {"mb", "ma"}, {"ma", "cl"}, {"cl", "ma"}, {"mb", "cl"}}
	mustReach("before the cut", all...)

	// A connection established before the cut.
	ca, err := dial("ma", "mb")
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	var cb net.Conn // mb's end of it (earlier dials were accepted too)
	for cb == nil {
		select {
		case c := <-accepted["mb"]:
			if c.RemoteAddr().String() == ca.LocalAddr().String() {
				cb = c
			} else {
				c.Close()
			}
		case <-ctx.Done():
			t.Fatal("mb did not accept the connection from ma")
		}
	}

	for range 2 {
		timed(t, "cut ma from mb", func() error { return l.CutRoutes("ma", "mb") })
	}
	start := time.Now()
	if err := reach("ma", "mb"); err == nil {
		t.Error("ma reaches mb after CutRoutes(ma, mb)")
	} else if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("a dial from ma to mb took %v to fail, want it at once: %v", d, err)
	} else {
		t.Logf("ma to mb: %v", err)
	}
	if err := reach("mb", "ma"); err == nil {
		t.Error("mb reaches ma after CutRoutes(ma, mb)")
	} else {
		t.Logf("mb to ma: %v", err)
	}
	mustReach("after the cut", [2]string{"ma", "cl"}, [2]string{"cl", "ma"}, [2]string{"mb", "cl"})
	// What ma sends on the established connection no longer arrives.
	if _, err := ca.Write([]byte("x")); err != nil {
		t.Fatalf("write on ma: %v", err)
	}
	cb.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := cb.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("mb read %d bytes from ma across the cut (err %v), want a timeout", n, err)
	}

	for range 2 {
		timed(t, "restore ma to mb", func() error { return l.RestoreRoutes("ma", "mb") })
	}
	mustReach("after the restore", all...)
	// TCP retransmits what was held back.
	cb.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(cb, b); err != nil || string(b) != "x" {
		t.Errorf("after the restore mb read %q, %v; want the byte ma wrote during the cut", b, err)
	}

	if err := l.CutRoutes("ma", "zz"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("CutRoutes to an unknown host: %v, want ErrUnknownHost", err)
	}
	if err := l.RestoreRoutes("zz", "ma"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("RestoreRoutes from an unknown host: %v, want ErrUnknownHost", err)
	}
	if err := l.CutRoutes("ma", "ma"); err == nil {
		t.Error("CutRoutes from a host to itself: no error")
	}
}
