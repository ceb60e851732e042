// Package signtest makes signing keys for tests.
package signtest

import (
	"testing"

	"github.com/mfsha/mfsha/internal/sign"
)

// Keys is a key pair written to a test's temporary directory, loaded.
type Keys struct {
	Signer   *sign.Signer
	Verifier *sign.Verifier // trusts this pair's public key only
	Private  string         // path of the private key file (0600)
	Public   string         // path of the public key file
}

// New writes a fresh key pair into t.TempDir() and loads it.
func New(t testing.TB) Keys {
	t.Helper()
	priv, pub, err := sign.WriteKeyPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return Keys{Signer: s, Verifier: v, Private: priv, Public: pub}
}
