package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKeepalivedBaseline: the glue MooseFS users run today fails the master over from ma to mb
// after a kill -9, and the files written before are there after. Its timings are measured by
// `make bench`, side by side with mfsha; here only the behaviour is checked.
func TestKeepalivedBaseline(t *testing.T) {
	requireLab(t)
	if _, err := lookBin("keepalived"); err != nil {
		t.Fatalf("%v: run `make deps` (Debian's keepalived)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := newLab(t, "k", DefaultHosts())
	timed(t, "up", func() error { return l.Up(ctx) })
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// From real metadata, as in production: a metalogger of a brand-new file system has no
	// metadata file that mfsmaster -a accepts.
	_, err := l.SeedMaster(ctx, HostMasterA, 4242, 1000, time.Now().Unix())
	must("seed 1,000 inodes", err)
	must("master", l.StartMaster(ctx, HostMasterA))
	timed(t, "keepalived takes the VIP", func() error { return l.StartKeepalived(ctx) })
	for _, h := range []string{HostMasterA, HostMasterB} {
		must("metalogger "+h, l.StartMetalogger(ctx, h))
	}
	for _, h := range []string{HostMasterB, HostChunk} {
		must("chunkserver "+h, l.StartChunkserver(ctx, h))
	}
	_, err = l.Mount(ctx, HostClient)
	must("mount", err)
	for i := 0; i < 5; i++ {
		must("write", l.WriteFile(ctx, HostClient, fmt.Sprintf("before-%d", i), []byte(fmt.Sprintf("file %d", i))))
	}
	// The metalogger flushes once a second: wait until mb holds the master's last line.
	mv, err := MasterVersion(ctx, l.Dialer(HostClient), l.MasterAddr())
	must("probe", err)
	ml := filepath.Join(l.MetaloggerDataDir(HostMasterB), "changelog_ml.0.mfs")
	last := []byte(fmt.Sprintf("%d: ", mv-1))
	must("metalogger catches up", poll(ctx, func() bool {
		b, _ := os.ReadFile(ml)
		return bytes.HasPrefix(b, last) || bytes.Contains(b, append([]byte{'\n'}, last...))
	}))

	killed := time.Now()
	must("kill -9 mfsmaster on ma", l.KillProcess(ctx, HostMasterA, RoleMaster))
	if err := l.WriteFile(ctx, HostClient, "after", []byte("after the failover")); err != nil {
		promote, _ := os.ReadFile(l.LogPath(HostMasterB, "keepalived-promote"))
		t.Fatalf("write after the failover: %v\nkeepalived states: ma %s, mb %s\nmb keepalived log:\n%s\npromote log:\n%s",
			err, l.keepalivedState(HostMasterA), l.keepalivedState(HostMasterB), l.logTail(HostMasterB, RoleKeepalived), promote)
	}
	t.Logf("a write issued right after the kill completed %v later", time.Since(killed).Round(10*time.Millisecond))
	owner, err := l.VIPOwner()
	if err != nil || owner != HostMasterB {
		t.Fatalf("VIP owner %q (%v), want mb; keepalived states: ma %s, mb %s", owner, err, l.keepalivedState(HostMasterA), l.keepalivedState(HostMasterB))
	}
	for i := 0; i < 5; i++ {
		b, err := l.ReadFile(ctx, HostClient, fmt.Sprintf("before-%d", i))
		if err != nil || string(b) != fmt.Sprintf("file %d", i) {
			t.Fatalf("before-%d after the failover: %q, %v", i, b, err)
		}
	}
}
