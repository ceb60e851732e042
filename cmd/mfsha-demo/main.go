// Command mfsha-demo runs `make demo`: a real MooseFS cluster in network namespaces with mfsha's
// failover nodes on two hosts and a three-node NATS JetStream cluster. It kills the master
// (kill -9) while a client writes, shows the standby taking over behind the same virtual IP
// with every file there, hands the master back with a planned switchover, and then tells the
// story no failover cures: a client runs `rm -rf` on ten directories, and the metadata is
// restored to a moment before it and served under failover again, with every file back; a
// last kill -9 shows HA working on the restored metadata's new timeline.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/natsconn"
)

func main() {
	bin := flag.String("mfsha", "bin/mfsha", "the mfsha `binary` to run on the lab's hosts")
	dir := flag.String("dir", ".lab/demo", "state `directory` of the lab")
	keep := flag.Bool("keep", false, "leave the lab running at the end (tear it down with `make demo-clean`)")
	cleanOnly := flag.Bool("clean-only", false, "only remove what an earlier demo left behind")
	version := flag.String("moosefs", "3.0.117", "the MooseFS `release` the lab runs: 3.0.117 (Debian's, in /usr) or 4.59.2 (built into /opt/moosefs-4.59.2 by `make deps`)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cleanOnly {
		if err := lab.Cleanup(ctx, "demo"); err != nil {
			fmt.Fprintln(os.Stderr, "demo-clean:", err)
			os.Exit(1)
		}
		return
	}
	mfs, err := moosefs.DistOf(*version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: -moosefs:", err)
		os.Exit(2)
	}
	start := time.Now()
	err = run(ctx, *bin, *dir, *keep, mfs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
	say("demo finished in %v", time.Since(start).Round(100*time.Millisecond))
}

func say(format string, args ...any)  { fmt.Printf("\n==> "+format+"\n", args...) }
func note(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func run(ctx context.Context, bin, dir string, keep bool, mfs moosefs.Dist) (err error) {
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (run `make build` first)", err)
	}
	dir, _ = filepath.Abs(dir)
	say("cleaning up any earlier demo lab")
	if err := lab.Cleanup(ctx, "demo"); err != nil {
		return err
	}
	os.RemoveAll(dir)
	l, err := lab.New(lab.Config{Name: "demo", Dir: dir, Hosts: append(lab.DefaultHosts(), lab.NATSHosts()...), MooseFS: mfs})
	if err != nil {
		return err
	}
	if !keep {
		defer func() {
			say("tearing the lab down")
			if derr := l.Down(context.Background()); derr != nil && err == nil {
				err = derr
			}
		}()
	}
	ma, mb, cl := lab.HostMasterA, lab.HostMasterB, lab.HostClient

	say("starting a real MooseFS %s cluster (%s), one network namespace per host, with mfsha's failover", mfs.Version, mfs.Sbin)
	t0 := time.Now()
	if err := l.Up(ctx); err != nil {
		return err
	}
	urls, err := l.StartNATS(ctx, bin, lab.HostNATS1, lab.HostNATS2, lab.HostNATS3)
	if err != nil {
		return err
	}
	natsURL := strings.Join(urls, ",")
	if err := l.InitMaster(ma); err != nil {
		return err
	}
	node := func(host, start string) error {
		return ha.StartNode(ctx, l, ha.NodeSpec{Host: host, Bin: bin, Start: start, Cluster: "demo", NATS: urls})
	}
	if err := node(ma, "ship"); err != nil {
		return err
	}
	lease, closeNC, err := ha.Lease(ctx, l, cl, "demo", urls)
	if err != nil {
		return err
	}
	defer closeNC()
	if _, err := ha.WaitMaster(ctx, lease, ma); err != nil {
		return err
	}
	for _, h := range []string{ma, mb} {
		if err := l.StartMetalogger(ctx, h); err != nil {
			return err
		}
	}
	if err := node(mb, "standby"); err != nil {
		return err
	}
	for _, h := range []string{mb, lab.HostChunk} {
		if err := l.StartChunkserver(ctx, h); err != nil {
			return err
		}
	}
	mnt, err := l.Mount(ctx, cl)
	if err != nil {
		return err
	}
	note("secrets   made once by mfsha init in %s: NATS CA and server certificates, an nkey user per role, the signing key", l.Secrets())
	note("n1 n2 n3  a three-node NATS JetStream cluster (mfsha nats): nkey users with per-role permissions, TLS, mutual-TLS routes")
	note("ma %s  mfsha ship --vip: holds the lease, runs mfsmaster, holds the VIP, ships; + mfsmetalogger", l.HostAddr(ma))
	note("mb %s  mfsha standby --vip: keeps metadata materialized, takes over when the lease is free; + mfsmetalogger, mfschunkserver", l.HostAddr(mb))
	note("c1 %s  mfschunkserver", l.HostAddr(lab.HostChunk))
	note("cl %s  mfsmount at %s; everything reaches the master through the VIP %s (up in %v)", l.HostAddr(cl), mnt, l.VIP(), time.Since(t0).Round(10*time.Millisecond))

	say("the client writes directories 1..10, each with a file, through the mount")
	for i := 1; i <= 10; i++ {
		if err := os.MkdirAll(filepath.Join(mnt, strconv.Itoa(i)), 0o755); err != nil {
			return err
		}
		data := bytes.Repeat([]byte(fmt.Sprintf("file %d of the demo\n", i)), 1000)
		if err := l.WriteFile(ctx, cl, filepath.Join(strconv.Itoa(i), "data.txt"), data); err != nil {
			return err
		}
	}
	note("ls %s: %s", mnt, listing(mnt))
	if err := ha.WaitCaughtUp(ctx, lease, mb); err != nil {
		return err
	}
	if err := status(ctx, l, bin, natsURL); err != nil {
		return err
	}

	say("failure: kill -9 of mfsmaster on ma; the client writes a file right away")
	vip := ha.SampleVIP(l, 10*time.Millisecond)
	killed := time.Now()
	if err := l.KillProcs(ctx, ma, "mfsmaster"); err != nil {
		return err
	}
	if err := l.WriteFile(ctx, cl, "written-during-failover.txt", []byte("hello from the failover\n")); err != nil {
		return err
	}
	note("the write completed %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	epoch, err := ha.WaitMaster(ctx, lease, mb)
	if err != nil {
		return err
	}
	hist, _, verr := vip.Stop()
	if verr != nil {
		return verr
	}
	note("mb is the master (lease epoch %d); who held the VIP, sampled every 10 ms: %s", epoch, strings.Join(hist, "; "))
	note("ls %s: %s", mnt, listing(mnt))
	for i := 1; i <= 10; i++ {
		b, err := l.ReadFile(ctx, cl, filepath.Join(strconv.Itoa(i), "data.txt"))
		if err != nil || !bytes.HasPrefix(b, []byte(fmt.Sprintf("file %d of the demo", i))) {
			return fmt.Errorf("directory %d after the failover: %v", i, err)
		}
	}
	note("every file written before the kill is there; ma's node now stands by")
	if err := ha.WaitCaughtUp(ctx, lease, ma); err != nil {
		return err
	}

	say("planned switchover back to ma: mfsha switchover --to ma")
	out, err := l.Exec(ctx, cl, append([]string{bin, "switchover", "--to", ma, "--nats", natsURL, "--cluster", "demo"}, l.NATSFlags(natsconn.RoleNode)...)...)
	fmt.Print(indent(out))
	if err != nil {
		return err
	}
	if err := ha.WaitCaughtUp(ctx, lease, mb); err != nil {
		return err
	}
	if err := status(ctx, l, bin, natsURL); err != nil {
		return err
	}

	// Changelog timestamps are whole seconds: make the moment before the deletion unambiguous.
	time.Sleep(1100 * time.Millisecond)
	before := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1100 * time.Millisecond)
	say("disaster no failover cures: on the client, rm -rf %s/{1..10}", mnt)
	for i := 1; i <= 10; i++ {
		if err := os.RemoveAll(filepath.Join(mnt, strconv.Itoa(i))); err != nil {
			return err
		}
	}
	note("ls %s: %s", mnt, listing(mnt))
	if err := ha.WaitCaughtUp(ctx, lease, mb); err != nil {
		return err
	}
	note("the deletion is shipped too; the stream still holds everything before it")

	say("point-in-time restore of metadata.mfs as of %s (before the rm), from the stream", before.UTC().Format(time.RFC3339))
	restored := filepath.Join(l.HostDir(mb), "restored")
	t0 = time.Now()
	_, trusted, err := l.SigningKeys()
	if err != nil {
		return err
	}
	out, err = l.Exec(ctx, mb, append([]string{bin, "restore", "--nats", natsURL, "--cluster", "demo", "--trusted-keys", trusted,
		"--to", before.UTC().Format(time.RFC3339), "--out", restored, "--mfsmaster", mfs.Path("mfsmaster")}, l.NATSFlags(natsconn.RoleReader)...)...)
	fmt.Print(indent(out))
	if err != nil {
		return err
	}
	note("restore took %v", time.Since(t0).Round(10*time.Millisecond))

	say("back to HA on the restored metadata: stop both nodes (ma hands over: clean stop, last lines shipped), put the restore in mb's DATA_PATH, start mb's node as master and ma's as standby")
	t0 = time.Now()
	if err := l.Stop(ctx, mb, ha.RoleNode); err != nil {
		return err
	}
	if err := l.Stop(ctx, ma, ha.RoleNode); err != nil {
		return err
	}
	if err := os.RemoveAll(l.MasterDataDir(mb)); err != nil {
		return err
	}
	if err := os.Rename(restored, l.MasterDataDir(mb)); err != nil {
		return err
	}
	if err := node(mb, "ship"); err != nil {
		return err
	}
	epoch, err = ha.WaitMaster(ctx, lease, mb)
	if err != nil {
		return err
	}
	note("mb serves the restored metadata under the lease (epoch %d) after %v: restore's mark %s told its node to take the free lease with it; the stream starts a new timeline",
		epoch, time.Since(t0).Round(10*time.Millisecond), "mfsha-restored.json")
	if err := node(ma, "standby"); err != nil {
		return err
	}

	say("the same client mount, unchanged, sees every file again")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := l.ReadFile(ctx, cl, filepath.Join("7", "data.txt"))
		if err == nil && bytes.HasPrefix(b, []byte("file 7 of the demo")) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the files did not come back through the mount: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	note("ls %s: %s", mnt, listing(mnt))
	for i := 1; i <= 10; i++ {
		b, err := l.ReadFile(ctx, cl, filepath.Join(strconv.Itoa(i), "data.txt"))
		if err != nil || !bytes.HasPrefix(b, []byte(fmt.Sprintf("file %d of the demo", i))) {
			return fmt.Errorf("directory %d did not come back: %v", i, err)
		}
	}
	note("all 10 directories and their files are back, contents intact (the chunks never left the chunkservers)")
	if err := ha.WaitCaughtUp(ctx, lease, ma); err != nil {
		return err
	}
	if err := status(ctx, l, bin, natsURL); err != nil {
		return err
	}

	say("HA is on again: kill -9 of mfsmaster on mb; ma takes over on the new timeline")
	killed = time.Now()
	if err := l.KillProcs(ctx, mb, "mfsmaster"); err != nil {
		return err
	}
	if err := l.WriteFile(ctx, cl, "written-after-the-restore.txt", []byte("hello from the new timeline\n")); err != nil {
		return err
	}
	note("a write issued right after the kill completed %v later", time.Since(killed).Round(10*time.Millisecond))
	if epoch, err = ha.WaitMaster(ctx, lease, ma); err != nil {
		return err
	}
	for i := 1; i <= 10; i++ {
		b, err := l.ReadFile(ctx, cl, filepath.Join(strconv.Itoa(i), "data.txt"))
		if err != nil || !bytes.HasPrefix(b, []byte(fmt.Sprintf("file %d of the demo", i))) {
			return fmt.Errorf("directory %d after the failover on the new timeline: %v", i, err)
		}
	}
	note("ma is the master (epoch %d); the restored files and the one written after the kill are all there", epoch)
	if err := ha.WaitCaughtUp(ctx, lease, mb); err != nil {
		return err
	}
	note("mb's node stands by, caught up with ma on the new timeline")
	return status(ctx, l, bin, natsURL)
}

// status prints `mfsha status` as seen from the client host.
func status(ctx context.Context, l *lab.Lab, bin, natsURL string) error {
	out, err := l.Exec(ctx, lab.HostClient, append([]string{bin, "status", "--nats", natsURL, "--cluster", "demo"}, l.NATSFlags(natsconn.RoleReader)...)...)
	fmt.Print(indent(out))
	return err
}

func listing(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return "(empty)"
	}
	return strings.Join(names, " ")
}

func indent(b []byte) string {
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		out.WriteString("    | " + l + "\n")
	}
	return out.String()
}
