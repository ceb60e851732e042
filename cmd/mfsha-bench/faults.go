package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/internal/natsconn"
)

// faultSpec is one fault the failover benches inject on ma, in each setup.
type faultSpec struct {
	name       string
	keepalived func(ctx context.Context, l *lab.Lab) error // nil: no baseline for it
	mfsha      func(ctx context.Context, l *lab.Lab, c mfshaCluster) error
	powerOff   bool // the fault may take back what MooseFS acknowledged at the cut
	// resume, when set, undoes the fault after the window (a hung master that nobody replaced
	// must answer the read-back).
	resume func(l *lab.Lab)
}

// mfshaCluster is what an mfsha fault may need of the cluster under test.
type mfshaCluster struct {
	bin, name string
	urls      []string
}

// killSpec: kill -9 of mfsmaster.
var killSpec = faultSpec{
	name: killFault,
	keepalived: func(ctx context.Context, l *lab.Lab) error {
		return l.KillProcess(ctx, lab.HostMasterA, lab.RoleMaster)
	},
	mfsha: func(ctx context.Context, l *lab.Lab, _ mfshaCluster) error {
		return l.KillProcs(ctx, lab.HostMasterA, "mfsmaster")
	},
}

// powerOff: ma's link is cut, every process on it killed and its addresses gone (the VIP too).
func powerOff(ctx context.Context, l *lab.Lab) error {
	if err := l.KillHost(ctx, lab.HostMasterA); err != nil {
		return err
	}
	return l.DelVIP(lab.HostMasterA)
}

// hang stops every mfsmaster on ma (SIGSTOP): its port still accepts, nothing answers.
func hang(ctx context.Context, l *lab.Lab) error {
	pids, err := l.Procs(lab.HostMasterA, "mfsmaster")
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return errors.New("no mfsmaster on ma")
	}
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			return err
		}
	}
	return nil
}

// unhang resumes whatever mfsmaster is left stopped on ma.
func unhang(l *lab.Lab) {
	pids, _ := l.Procs(lab.HostMasterA, "mfsmaster")
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGCONT)
	}
}

// switchover runs `mfsha switchover --to mb` from the client's host: planned, nothing lost.
func switchover(ctx context.Context, l *lab.Lab, c mfshaCluster) error {
	out, err := l.Exec(ctx, lab.HostClient, append([]string{c.bin, "switchover", "--to", lab.HostMasterB, "--cluster", c.name, "--nats", strings.Join(c.urls, ",")},
		l.NATSFlags(natsconn.RoleNode)...)...)
	if err != nil {
		return fmt.Errorf("mfsha switchover: %w\n%s", err, out)
	}
	return nil
}

// onBoth makes a fault that needs nothing of mfsha's cluster.
func onBoth(f func(ctx context.Context, l *lab.Lab) error) func(ctx context.Context, l *lab.Lab, _ mfshaCluster) error {
	return func(ctx context.Context, l *lab.Lab, _ mfshaCluster) error { return f(ctx, l) }
}

var otherFaults = []faultSpec{
	{name: "power-off of the master's host", keepalived: powerOff, mfsha: onBoth(powerOff), powerOff: true},
	{name: "hung mfsmaster (SIGSTOP)", keepalived: hang, mfsha: onBoth(hang), resume: unhang},
	{name: "switchover (planned; keepalived has none)", mfsha: switchover},
}

// readBack reads back every file res acknowledged through a fresh mount on c1. After a power
// off, a file acknowledged within 200 ms of the cut may be wrong (MooseFS answers before its
// metaloggers have the line: see the README, "What a power-off can take back"): such files are
// returned, any other wrong file is the error.
func (f faultSpec) readBack(ctx context.Context, l *lab.Lab, res ha.WriterResult, at time.Time) ([]string, error) {
	if !f.powerOff {
		return nil, readBack(ctx, l, res)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return res.VerifyLost(rctx, l, lab.HostChunk, func(acked time.Time) bool {
		return acked.After(at.Add(-200*time.Millisecond)) && acked.Before(at.Add(200*time.Millisecond))
	})
}

// fastFlags are the failover settings of the faults section: a lease of 1 s is safe against
// a NATS election only with failsafe (FAILSAFE_HOLD 1 s <= LEASE_TTL, so a dead master's lease
// is taken after the TTL), and a health check that calls a master hung after two missed
// answers 300 ms apart. The rules hold: 200ms + 2*150ms + 300ms <= 1s and 200ms + 300ms +
// 300ms <= 1s*(1-0.002). (1.5 s before 2026-12-03: a power-off then blocked 4.3-4.7 s; with
// 1 s and tickles, 2.7 s.)
var fastFlags = []string{"--lease-ttl", "1000ms", "--renew-every", "200ms", "--renew-timeout", "150ms",
	"--master-stop-timeout", "300ms", "--failsafe-hold", "1000ms", "--check-every", "300ms", "--check-timeout", "300ms", "--check-failures", "2"}

// faultsSection: power-off, a hung master and a switchover at 1k inodes, keepalived (where it
// has an equivalent) against mfsha with fastFlags, measured like the failover section.
// only, when not empty, keeps the faults whose name contains it.
func faultsSection(ctx context.Context, w *strings.Builder, dir, bin, only string) error {
	const inodes = 1000
	fmt.Fprintf(w, "\n## Power-off, hung master and switchover (issue 11 part 3)\n\n")
	fmt.Fprintf(w, "The same writer, lab and measure as the failover section, at %d inodes, for three more faults: a power-off of ma (link cut, every process killed, its addresses gone), "+
		"a hung mfsmaster (SIGSTOP: its port still accepts) and a switchover (`mfsha switchover`). mfsha runs with `%s` "+
		"(a 1 s lease, safe against NATS elections because of failsafe; a master hung after two missed health checks 300 ms apart); "+
		"keepalived with the lab's setup (advert_int 1, a check script every 2 s that the client port accepts). Targets for mfsha: at most 4 s blocked for the power-off and the hung master, 1.5 s for the switchover.\n\n",
		inodes, strings.Join(fastFlags, " "))
	fmt.Fprint(w, "| fault | keepalived: longest gap | blocked | outages | mfsha: longest gap | blocked | outages | blocked, mfsha/keepalived | acknowledged files (keepalived, mfsha) |\n|---|---|---|---|---|---|---|---|---|\n")
	var lost []error
	for i, f := range otherFaults {
		if !strings.Contains(f.name, only) {
			continue
		}
		var k felt
		if f.keepalived != nil {
			fmt.Printf("%s: keepalived baseline...\n", f.name)
			var err error
			if k, err = keepalivedFault(ctx, filepath.Join(dir, fmt.Sprintf("kaf%d", i)), flat(inodes), f); err != nil {
				return fmt.Errorf("keepalived, %s: %w", f.name, err)
			}
			fmt.Printf("  keepalived: %s\n", k)
		}
		fmt.Printf("%s: mfsha...\n", f.name)
		m, err := mfshaFault(ctx, filepath.Join(dir, fmt.Sprintf("mff%d", i)), bin, flat(inodes), f, fastFlags)
		if err != nil {
			return fmt.Errorf("mfsha, %s: %w", f.name, err)
		}
		fmt.Printf("  mfsha: %s\n", m)
		r := failoverRow{fault: f.name, inodes: inodes, keepalived: k.row(), mfsha: m.row()}
		kr, mr := k.row(), m.row()
		base := fmt.Sprintf("%.2f s | %.2f s | %d", kr.longest, kr.blocked, kr.outages)
		if f.keepalived == nil {
			base = "- | - | -"
		}
		kfiles := fmt.Sprintf("%d%s", kr.files, takenBack(k))
		if f.keepalived == nil {
			kfiles = "-"
		}
		fmt.Fprintf(w, "| %s | %s | %.2f s | %.2f s | %d | %s | %s, %d%s |\n", f.name, base,
			mr.longest, mr.blocked, mr.outages, r.ratioText(), kfiles, mr.files, takenBack(m))
		for _, x := range []struct {
			who string
			f   felt
		}{{"keepalived", k}, {"mfsha", m}} {
			if x.f.readBack != nil {
				lost = append(lost, fmt.Errorf("%s, %s: %w", x.who, f.name, x.f.readBack))
			}
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("acknowledged files not read back: %w", errors.Join(lost...))
	}
	return nil
}

// takenBack notes the files a power-off took back, for the table.
func takenBack(f felt) string {
	if len(f.lost) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d acknowledged at the cut taken back)", len(f.lost))
}
