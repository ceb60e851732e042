package restorer

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/snapshot"
)

// testSigner and testVerifier are the cluster key of every test in this package: shippers
// sign with it, restores and standbys trust it. Made fresh for each run, in a temporary
// directory, in the format of mfsha init.
var (
	testSigner   *sign.Signer
	testVerifier *sign.Verifier
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mfsha-restorer-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		priv, pub, err := sign.WriteKeyPair(dir)
		if err == nil {
			testSigner, err = sign.LoadSigner(priv)
		}
		if err == nil {
			testVerifier, err = sign.LoadVerifier(pub)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// signedStore opens the cluster's snapshot store on js, signing and verifying with the test key.
func signedStore(t *testing.T, js jetstream.JetStream) *snapshot.Store {
	t.Helper()
	store, err := snapshot.Open(context.Background(), js, cluster, 1)
	if err != nil {
		t.Fatal(err)
	}
	return store.WithSigner(testSigner).WithVerifier(testVerifier)
}
