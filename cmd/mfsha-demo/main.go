// Command mfsha-demo runs `make demo`: a real MooseFS cluster in network namespaces, mfsha
// shipping its master's metadata to NATS JetStream, and the story mfsha exists for: a client
// runs `rm -rf` on ten directories, and the metadata is restored to a moment before it, served
// by a new master on another host behind the same virtual IP, with every file back.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
)

func main() {
	bin := flag.String("mfsha", "bin/mfsha", "the mfsha `binary` to run on the lab's hosts")
	dir := flag.String("dir", ".lab/demo", "state `directory` of the lab")
	keep := flag.Bool("keep", false, "leave the lab running at the end (tear it down with `make demo-clean`)")
	cleanOnly := flag.Bool("clean-only", false, "only remove what an earlier demo left behind")
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
	start := time.Now()
	err := run(ctx, *bin, *dir, *keep)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
	say("demo finished in %v", time.Since(start).Round(100*time.Millisecond))
}

func say(format string, args ...any)  { fmt.Printf("\n==> "+format+"\n", args...) }
func note(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func run(ctx context.Context, bin, dir string, keep bool) (err error) {
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
	l, err := lab.New(lab.Config{Name: "demo", Dir: dir})
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

	say("starting a real MooseFS 3.0.117 cluster: one network namespace per host")
	t0 := time.Now()
	mnt, err := l.StartCluster(ctx)
	if err != nil {
		return err
	}
	ma, mb := lab.HostMasterA, lab.HostMasterB
	note("ma %s  mfsmaster + mfsmetalogger (+ mfsha ship)", l.HostAddr(ma))
	note("mb %s  mfsmetalogger + mfschunkserver", l.HostAddr(mb))
	note("c1 %s  mfschunkserver", l.HostAddr(lab.HostChunk))
	note("cl %s  mfsmount at %s", l.HostAddr(lab.HostClient), mnt)
	note("VIP %s on ma; everything reaches the master through it (up in %v)", l.VIP(), time.Since(t0).Round(10*time.Millisecond))

	say("starting `mfsha ship` on ma, with its embedded NATS JetStream server")
	natsURL := fmt.Sprintf("nats://%s:4222", l.HostAddr(ma))
	metricsAddr := fmt.Sprintf("%s:9480", l.HostAddr(ma))
	err = l.Start(ctx, lab.ProcSpec{Host: ma, Role: "ship",
		Argv: []string{bin, "ship", "--data", l.MasterDataDir(ma), "--state", filepath.Join(l.HostDir(ma), "mfsha"),
			"--nats-listen", l.HostAddr(ma).String() + ":4222", "--metrics", metricsAddr, "--cluster", "demo"},
		Ready: func(ctx context.Context) error {
			_, err := metric(ctx, l, metricsAddr, "mfsha_ship_last_version")
			return err
		},
	})
	if err != nil {
		return err
	}
	note("log: %s", l.LogPath(ma, "ship"))

	say("starting `mfsha standby` on mb: it keeps a metadata.mfs materialized from the stream")
	standbyMetrics := fmt.Sprintf("%s:9481", l.HostAddr(mb))
	err = l.Start(ctx, lab.ProcSpec{Host: mb, Role: "standby",
		Argv: []string{bin, "standby", "--data", filepath.Join(l.HostDir(mb), "standby"), "--nats", natsURL, "--cluster", "demo",
			"--fold-lines", "1", "--fold-every", "1s", "--poll", "200ms", "--metrics", standbyMetrics},
		Ready: func(ctx context.Context) error {
			_, err := metric(ctx, l, standbyMetrics, "mfsha_standby_materialized_version")
			return err
		},
	})
	if err != nil {
		return err
	}

	say("the client writes directories 1..10, each with a file, through the mount")
	for i := 1; i <= 10; i++ {
		if err := os.MkdirAll(filepath.Join(mnt, strconv.Itoa(i)), 0o755); err != nil {
			return err
		}
		data := bytes.Repeat([]byte(fmt.Sprintf("file %d of the demo\n", i)), 1000)
		if err := l.WriteFile(ctx, lab.HostClient, filepath.Join(strconv.Itoa(i), "data.txt"), data); err != nil {
			return err
		}
	}
	note("ls %s: %s", mnt, listing(mnt))
	if err := waitShipped(ctx, l, metricsAddr); err != nil {
		return err
	}
	if err := waitMaterialized(ctx, l, standbyMetrics); err != nil {
		return err
	}
	out, err := l.Exec(ctx, lab.HostClient, bin, "status", "--nats", natsURL, "--cluster", "demo")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	// Changelog timestamps are whole seconds: make the moment before the deletion unambiguous.
	time.Sleep(1100 * time.Millisecond)
	before := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1100 * time.Millisecond)
	say("disaster: on the client, rm -rf %s/{1..10}", mnt)
	for i := 1; i <= 10; i++ {
		if err := os.RemoveAll(filepath.Join(mnt, strconv.Itoa(i))); err != nil {
			return err
		}
	}
	note("ls %s: %s", mnt, listing(mnt))
	if err := waitShipped(ctx, l, metricsAddr); err != nil {
		return err
	}
	note("the deletion is shipped too; the stream still holds everything before it")

	say("restoring metadata.mfs as of %s (before the rm) on mb, from the stream", before.UTC().Format(time.RFC3339))
	restored := l.MasterDataDir(mb)
	t0 = time.Now()
	out, err = l.Exec(ctx, mb, bin, "restore", "--nats", natsURL, "--cluster", "demo", "--to", before.UTC().Format(time.RFC3339), "--out", restored)
	fmt.Print(indent(out))
	if err != nil {
		return err
	}
	note("restore took %v", time.Since(t0).Round(10*time.Millisecond))

	say("moving the master: stop ma's master and mfsha, start a master on mb from the restored metadata, move the VIP")
	t0 = time.Now()
	if err := l.Stop(ctx, ma, "ship"); err != nil {
		return err
	}
	if err := l.Stop(ctx, mb, "standby"); err != nil {
		return err
	}
	if err := l.StopMaster(ctx, ma); err != nil {
		return err
	}
	if err := l.DelVIP(ma); err != nil {
		return err
	}
	if err := l.AddVIP(mb); err != nil {
		return err
	}
	if err := l.StartMaster(ctx, mb); err != nil {
		return err
	}
	if err := l.AnnounceVIP(mb); err != nil {
		return err
	}
	owner, err := l.VIPOwner()
	if err != nil {
		return err
	}
	note("VIP %s now on %s; master serving after %v", l.VIP(), owner, time.Since(t0).Round(10*time.Millisecond))

	say("the same client mount, unchanged, sees every file again")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := l.ReadFile(ctx, lab.HostClient, filepath.Join("7", "data.txt"))
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
		b, err := l.ReadFile(ctx, lab.HostClient, filepath.Join(strconv.Itoa(i), "data.txt"))
		if err != nil || !bytes.HasPrefix(b, []byte(fmt.Sprintf("file %d of the demo", i))) {
			return fmt.Errorf("directory %d did not come back: %v", i, err)
		}
	}
	note("all 10 directories and their files are back, contents intact (the chunks never left the chunkservers)")
	say("still to come (issue 5): automatic failover to the standby, measured against keepalived")
	return nil
}

// waitShipped waits until the shipper has acknowledged everything the master has done.
func waitShipped(ctx context.Context, l *lab.Lab, metricsAddr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mv, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
		if err != nil {
			return err
		}
		shipped, err := metric(ctx, l, metricsAddr, "mfsha_ship_last_version")
		if err == nil && shipped+1 >= float64(mv) {
			note("master at version %d; mfsha shipped every line up to %d", mv, uint64(shipped))
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("mfsha did not ship the master's lines within 30s")
}

// waitMaterialized waits until the standby's metadata holds every change the master made.
func waitMaterialized(ctx context.Context, l *lab.Lab, metricsAddr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mv, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
		if err != nil {
			return err
		}
		got, err := metric(ctx, l, metricsAddr, "mfsha_standby_materialized_version")
		if err == nil && uint64(got) == mv {
			note("mb's standby holds metadata.mfs of version %d, the master's own: a promotion would replay nothing", mv)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the standby did not materialize the master's version within 30s")
}

// metric reads one value from mfsha's metrics endpoint, from inside the client's namespace.
func metric(ctx context.Context, l *lab.Lab, addr, name string) (float64, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: l.Dialer(lab.HostClient)}, Timeout: 2 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
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
