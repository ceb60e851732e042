package failover

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/moosefs"
)

// TestMasterOlderThanItsMetadata: MFSMASTER_BIN of 3.0.117 on a DATA_PATH holding metadata
// written by 4.59.2 is refused before mfsmaster runs, naming the binary and both releases;
// 4.59.2 on the same files serves.
func TestMasterOlderThanItsMetadata(t *testing.T) {
	env := newMasterEnv(t)
	old, cur := moosefs.Installed[0], moosefs.Installed[1]
	for _, d := range []moosefs.Dist{old, cur} {
		if err := d.Check(context.Background(), "mfsmaster"); err != nil {
			t.Fatalf("%v: run `make deps`", err)
		}
	}
	if _, err := lab.MakeMetadata(context.Background(), cur.Path("mfsmaster"), env.data, 7, 20, 1700000000); err != nil {
		t.Fatal(err)
	}
	m, err := NewMaster(MasterConfig{Bin: old.Path("mfsmaster"), Config: env.config}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Mfsmaster(); got.Version != old.Version || got.Path != old.Path("mfsmaster") {
		t.Errorf("Mfsmaster() = %v, want %s of %s", got, old.Path("mfsmaster"), old.Version)
	}
	_, err = m.Start(context.Background(), true)
	if !errors.Is(err, moosefs.ErrVersion) {
		t.Fatalf("start 3.0.117 on 4.59.2 metadata: %v, want ErrVersion", err)
	}
	for _, want := range []string{old.Path("mfsmaster"), "3.0.117", "4.59.2", filepath.Join(env.data, "metadata.mfs")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if m.Running() {
		t.Errorf("mfsmaster runs as pid %d after the refusal", m.Pid())
	}

	m4, err := NewMaster(MasterConfig{Bin: cur.Path("mfsmaster"), Config: env.config}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m4.Kill() })
	v, err := m4.Start(context.Background(), true)
	if err != nil || v != 22 {
		t.Fatalf("start 4.59.2 on its own metadata: version %d, %v; want 22", v, err)
	}
}
