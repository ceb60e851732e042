package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Environment of the helper process that TestDownAfterInterruptedRun starts: it brings a lab
// up and exits without tearing it down, as an interrupted test or demo would.
const (
	helperNameEnv = "MFSHA_LAB_HELPER_NAME"
	helperDirEnv  = "MFSHA_LAB_HELPER_DIR"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(helperNameEnv); name != "" {
		os.Exit(runInterruptedHelper(name, os.Getenv(helperDirEnv)))
	}
	os.Exit(m.Run())
}

func helperConfig(name, dir string) Config {
	return Config{Name: name, Dir: dir, Hosts: []HostSpec{{Name: "ma"}, {Name: "cl"}}}
}

func runInterruptedHelper(name, dir string) int {
	l, err := New(helperConfig(name, dir))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = l.StartCluster(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0 // no Down: the master, metalogger and mount outlive this process
}

func TestDownAfterInterruptedRun(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, dir := labName("d"), t.TempDir()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperNameEnv+"="+name, helperDirEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}

	l, err := New(helperConfig(name, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down(context.Background()) }) // in case an assertion below fails first
	for _, role := range []Role{RoleMaster, RoleMetalogger} {
		if _, ok := l.Running("ma", role); !ok {
			t.Errorf("%s started by the helper process is not running", role)
		}
	}
	if _, ok := l.Running("cl", RoleMount); !ok {
		t.Error("mount made by the helper process is not running")
	}
	if _, err := MasterVersion(ctx, l.Dialer("cl"), l.MasterAddr()); err != nil {
		t.Errorf("master left by the helper process: %v", err)
	}
	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, l)
}
