package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
)

// stall is one failover measured from the client's side.
type stall struct {
	floor time.Duration // mfsmaster's own start on that metadata, to its first answer (measured in the baseline's lab)
	stall time.Duration // kill -9 to the completion of a write issued right after it
}

// failoverSection: the client's stall after kill -9 of mfsmaster, mfsha against the keepalived
// baseline in the same lab layout and run, at each size of metadata.
// The table is drawn as an SVG chart at chart, which the section embeds.
func failoverSection(ctx context.Context, w *strings.Builder, dir, bin string, sizes []int, chart string) error {
	fmt.Fprintf(w, "\n## Failover (issue 5)\n\n")
	fmt.Fprintf(w, "The client's stall: from `kill -9` of mfsmaster to the completion of a write through `mfsmount` issued right after it. "+
		"The floor is the time mfsmaster itself takes from its start to its first answer on that metadata. Same lab layout for both: "+
		"master on ma, metaloggers on ma and mb, chunkservers on mb and c1 and metaloggers with MASTER_RECONNECTION_DELAY = 1 (an HA setting; the default 5 s adds up to 5 s to both), client on cl.\n\n")
	fmt.Fprintf(w, "| inodes | keepalived (baseline) | mfsha | ratio | target | mfsmaster load floor | mfsha above the floor | target |\n|---|---|---|---|---|---|---|---|\n")
	var rows []failoverRow
	for _, n := range sizes {
		fmt.Printf("failover at %d inodes: keepalived baseline...\n", n)
		k, err := keepalivedStall(ctx, filepath.Join(dir, fmt.Sprintf("ka%d", n)), n)
		if err != nil {
			return fmt.Errorf("keepalived at %d inodes: %w", n, err)
		}
		fmt.Printf("  keepalived: stall %v (floor %v)\n", k.stall.Round(10*time.Millisecond), k.floor.Round(10*time.Millisecond))
		fmt.Printf("failover at %d inodes: mfsha...\n", n)
		m, err := mfshaStall(ctx, filepath.Join(dir, fmt.Sprintf("mf%d", n)), bin, n)
		if err != nil {
			return fmt.Errorf("mfsha at %d inodes: %w", n, err)
		}
		floor := k.floor
		fmt.Printf("  mfsha: stall %v, %.2fx keepalived, %v above the floor %v\n", m.stall.Round(10*time.Millisecond),
			m.stall.Seconds()/k.stall.Seconds(), (m.stall - floor).Round(10*time.Millisecond), floor.Round(10*time.Millisecond))
		fmt.Fprintf(w, "| %d | %.2f s | %.2f s | %.2fx | <= 0.35x | %.2f s | %.2f s | <= 1.0 s |\n", n, k.stall.Seconds(), m.stall.Seconds(),
			m.stall.Seconds()/k.stall.Seconds(), floor.Seconds(), (m.stall - floor).Seconds())
		rows = append(rows, failoverRow{fault: "kill -9 of mfsmaster", inodes: n, keepalived: k.stall.Seconds(), mfsha: m.stall.Seconds(), floor: floor.Seconds()})
	}
	if err := writeChartFile(chart, failoverChart(rows)); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	fmt.Fprintf(w, "\n![%s](%s)\n", failoverChart(rows).Title, filepath.Base(chart))
	return nil
}

// benchLab makes a lab for one measurement and tears it down with the returned function.
func benchLab(ctx context.Context, name, dir string, hosts []lab.HostSpec) (*lab.Lab, func(), error) {
	_ = lab.Cleanup(ctx, name)
	l, err := lab.New(lab.Config{Name: name, Dir: dir, Hosts: hosts, StartTimeout: 2 * time.Minute, MooseFS: benchMooseFS})
	if err != nil {
		return nil, nil, err
	}
	down := func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Down(dctx); err != nil {
			fmt.Fprintln(os.Stderr, "lab down:", err)
		}
	}
	if err := l.Up(ctx); err != nil {
		down()
		return nil, nil, err
	}
	return l, down, nil
}

// startClients starts the chunkservers and the mount, and writes a few files.
func startClients(ctx context.Context, l *lab.Lab) error {
	for _, h := range []string{lab.HostMasterB, lab.HostChunk} {
		if err := l.StartChunkserver(ctx, h); err != nil {
			return err
		}
	}
	if _, err := l.Mount(ctx, lab.HostClient); err != nil {
		return err
	}
	for i := range 5 {
		if err := l.WriteFile(ctx, lab.HostClient, fmt.Sprintf("before-%d", i), []byte("data before the failover\n")); err != nil {
			return err
		}
	}
	return nil
}

// measure kills mfsmaster on ma with kill, then times a write from the client.
func measure(ctx context.Context, l *lab.Lab, kill func() error) (time.Duration, error) {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := kill(); err != nil {
		return 0, err
	}
	if err := l.WriteFile(wctx, lab.HostClient, "after", []byte("written during the failover\n")); err != nil {
		return 0, fmt.Errorf("write after the kill: %w", err)
	}
	return time.Since(start), nil
}

func keepalivedStall(ctx context.Context, dir string, inodes int) (stall, error) {
	var s stall
	l, down, err := benchLab(ctx, "bka", dir, lab.DefaultHosts())
	if err != nil {
		return s, err
	}
	defer down()
	if _, err := l.SeedMaster(ctx, lab.HostMasterA, 4242, inodes, time.Now().Unix()); err != nil {
		return s, err
	}
	t0 := time.Now()
	if err := l.StartMaster(ctx, lab.HostMasterA); err != nil {
		return s, err
	}
	s.floor = time.Since(t0)
	if err := l.StartKeepalived(ctx); err != nil {
		return s, err
	}
	for _, h := range []string{lab.HostMasterA, lab.HostMasterB} {
		if err := l.StartMetalogger(ctx, h); err != nil {
			return s, err
		}
	}
	if err := startClients(ctx, l); err != nil {
		return s, err
	}
	// The baseline at its best: mb's metalogger holds the master's last line and its metadata.
	mv, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
	if err != nil {
		return s, err
	}
	ml := l.MetaloggerDataDir(lab.HostMasterB)
	last := []byte(fmt.Sprintf("%d: ", mv-1))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(ml, "changelog_ml.0.mfs"))
		_, metaErr := os.Stat(filepath.Join(ml, "metadata_ml.mfs.back"))
		if metaErr == nil && (bytes.HasPrefix(b, last) || bytes.Contains(b, append([]byte{'\n'}, last...))) {
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("mb's metalogger never held version %d", mv-1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stall, err = measure(ctx, l, func() error { return l.KillProcess(ctx, lab.HostMasterA, lab.RoleMaster) })
	return s, err
}

func mfshaStall(ctx context.Context, dir, bin string, inodes int) (stall, error) {
	var s stall
	l, down, err := benchLab(ctx, "bmf", dir, append(lab.DefaultHosts(), lab.NATSHosts()...))
	if err != nil {
		return s, err
	}
	defer down()
	urls, err := l.StartNATS(ctx, bin, lab.HostNATS1, lab.HostNATS2, lab.HostNATS3)
	if err != nil {
		return s, err
	}
	if _, err := l.SeedMaster(ctx, lab.HostMasterA, 4242, inodes, time.Now().Unix()); err != nil {
		return s, err
	}
	cluster := l.Name() // the lab's secrets are for the cluster named like the lab
	node := func(host, start string) error {
		return ha.StartNode(ctx, l, ha.NodeSpec{Host: host, Bin: bin, Start: start, Cluster: cluster, NATS: urls})
	}
	if err := node(lab.HostMasterA, "ship"); err != nil {
		return s, err
	}
	lease, closeNC, err := ha.Lease(ctx, l, lab.HostClient, cluster, urls)
	if err != nil {
		return s, err
	}
	defer closeNC()
	if _, err := ha.WaitMaster(ctx, lease, lab.HostMasterA); err != nil {
		return s, err
	}
	for _, h := range []string{lab.HostMasterA, lab.HostMasterB} {
		if err := l.StartMetalogger(ctx, h); err != nil {
			return s, err
		}
	}
	if err := node(lab.HostMasterB, "standby"); err != nil {
		return s, err
	}
	if err := startClients(ctx, l); err != nil {
		return s, err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := ha.WaitCaughtUp(wctx, lease, lab.HostMasterB); err != nil {
		return s, err
	}
	s.stall, err = measure(ctx, l, func() error { return l.KillProcs(ctx, lab.HostMasterA, "mfsmaster") })
	if err != nil {
		return s, err
	}
	if _, err := ha.WaitMaster(wctx, lease, lab.HostMasterB); err != nil {
		return s, err
	}
	return s, nil
}
