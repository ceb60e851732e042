package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/sign"
)

// TestKeysAreRequired: a shipper without SIGNING_KEY and a reader without TRUSTED_KEYS refuse
// to start (exit status 2) with an error naming the setting and the command that makes the
// keys; a bad key file is named. Nothing is reached over the network before.
func TestKeysAreRequired(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := sign.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pub")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	// Unreachable on purpose: a command that got past its key checks would fail here instead.
	nats := []string{"--nats", "nats://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		cmd  command
		args []string
		want []string
	}{
		{"ship without SIGNING_KEY", &shipCommand{}, []string{"--data", data, "--kind", "master"}, []string{"SIGNING_KEY", "mfsha init"}},
		{"ship with a public key as SIGNING_KEY", &shipCommand{}, []string{"--data", data, "--kind", "master", "--signing-key", pub}, []string{"SIGNING_KEY", pub}},
		{"standby without TRUSTED_KEYS", &standbyCommand{}, []string{"--data", data}, []string{"TRUSTED_KEYS", "mfsha init"}},
		{"standby with a bad TRUSTED_KEYS file", &standbyCommand{}, []string{"--data", data, "--trusted-keys", pub + "," + garbage}, []string{"TRUSTED_KEYS", garbage}},
		{"failover standby without SIGNING_KEY", &standbyCommand{}, []string{"--data", data, "--trusted-keys", pub, "--vip", "10.0.0.100/24",
			"--mfsmaster-config", filepath.Join(dir, "none.cfg")}, []string{"SIGNING_KEY", "mfsha init"}},
		{"restore without TRUSTED_KEYS", &restoreCommand{}, []string{"--out", data}, []string{"TRUSTED_KEYS", "mfsha init"}},
		{"restore with a private key as TRUSTED_KEYS", &restoreCommand{}, []string{"--out", data, "--trusted-keys", priv}, []string{"TRUSTED_KEYS", priv}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cmd.Run(context.Background(), append(append([]string{}, nats...), tc.args...))
			var ue usageError
			if !errors.As(err, &ue) || exitCode(err) != exitUsage {
				t.Fatalf("got %v; want a usage error (exit status %d)", err, exitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
