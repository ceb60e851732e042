package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/natsconn"
)

// buildMfsha builds the mfsha binary the lab runs on its hosts.
func buildMfsha(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	out := filepath.Join(t.TempDir(), "mfsha")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/mfsha/mfsha/cmd/mfsha")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build mfsha: %v\n%s", err, b)
	}
	return out
}

// TestShipToNATSClusterSurvivesLosingANode: mfsha ship on the master writes to a three-node
// JetStream cluster (replicas 3) on hosts of their own; one NATS host is powered off, and every
// change made through the mount afterwards still reaches the stream.
func TestShipToNATSClusterSurvivesLosingANode(t *testing.T) {
	requireLab(t)
	bin := buildMfsha(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := newLab(t, "n", append([]HostSpec{{Name: HostMasterA}, {Name: HostClient}}, NATSHosts()...))
	var mnt string
	timed(t, "cluster", func() (err error) { mnt, err = l.StartCluster(ctx); return err })
	var urls []string
	timed(t, "NATS cluster", func() (err error) {
		urls, err = l.StartNATS(ctx, bin, HostNATS1, HostNATS2, HostNATS3)
		return err
	})
	// The shipper is given n1 alone, the node about to be powered off, so it is surely connected
	// to the dead host: it must notice without an RST and move to the servers it learned of.
	keys, err := l.KeyFlags()
	if err != nil {
		t.Fatal(err)
	}
	timed(t, "mfsha ship", func() error {
		return l.Start(ctx, ProcSpec{Host: HostMasterA, Role: "ship", Argv: append([]string{bin, "ship", "--data", l.MasterDataDir(HostMasterA),
			"--nats", l.NATSURL(HostNATS1), "--replicas", "3", "--cluster", l.Name(), "--metrics", "", "--poll", "200ms"},
			append(l.NATSFlags(natsconn.RoleNode), keys...)...)})
	})
	nc, err := l.ConnectNATS(HostClient, urls...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	shipped := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			mv, err := MasterVersion(ctx, l.Dialer(HostClient), l.MasterAddr())
			if err != nil {
				t.Fatal(err)
			}
			qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
			var last uint64
			var replicas int
			if st, err := js.Stream(qctx, "MFSHA_"+l.Name()); err == nil {
				if m, err := st.GetLastMsgForSubject(qctx, "mfsha."+l.Name()+".log.1"); err == nil {
					fmt.Sscan(m.Header.Get("Mfsha-Last-Version"), &last)
				}
				replicas = st.CachedInfo().Config.Replicas
			}
			qcancel()
			if last+1 == mv && replicas == 3 {
				t.Logf("%s: the stream (replicas %d) holds every line up to %d", what, replicas, last)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: master at version %d, stream at %d (replicas %d); ship log:\n%s", what, mv, last, replicas, l.logTail(HostMasterA, "ship"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := 0; i < 10; i++ {
		if err := os.Mkdir(filepath.Join(mnt, fmt.Sprintf("before-%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shipped("before")
	if err := l.KillHost(ctx, HostNATS1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := os.Mkdir(filepath.Join(mnt, fmt.Sprintf("after-%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shipped("with n1 powered off")
}
