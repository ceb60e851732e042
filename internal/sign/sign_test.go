package sign

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyPairRoundTrip(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath, err := WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("private key mode %04o, want %04o", got, want)
	}
	s, err := LoadSigner(privPath)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.KeyIDs(); len(got) != 1 || got[0] != s.KeyID() || len(got[0]) != 16 {
		t.Fatalf("verifier trusts %v, want [%s] (16 hex characters)", got, s.KeyID())
	}
	msg := []byte("mfsha-batch-v1\n")
	if err := v.Verify(s.KeyID(), s.Sign(msg), msg); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	if err := v.Verify(s.KeyID(), s.Sign(msg), []byte("mfsha-batch-v1\nx")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed content: %v, want ErrBadSignature", err)
	}
	if _, _, err := WriteKeyPair(dir); err == nil || !strings.Contains(err.Error(), privPath) {
		t.Fatalf("second WriteKeyPair in the same dir: %v, want a refusal naming %s", err, privPath)
	}
}

func TestKeyIDIsSHA256Prefix(t *testing.T) {
	// The contract with mfsha init: hex of the first 8 bytes of SHA-256 of the raw key.
	pub := ed25519.PublicKey(make([]byte, 32))
	// sha256 of 32 zero bytes = 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
	if got, want := KeyID(pub), "66687aadf862bd77"; got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
}

func TestRotationAndForeignKeys(t *testing.T) {
	old, _ := Generate()
	cur, _ := Generate()
	foreign, _ := Generate()
	v, err := NewVerifier(old.Public().(ed25519.PublicKey), cur.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("content")
	for _, k := range []ed25519.PrivateKey{old, cur} {
		s := NewSigner(k)
		if err := v.Verify(s.KeyID(), s.Sign(msg), msg); err != nil {
			t.Errorf("key %s: %v", s.KeyID(), err)
		}
	}
	f := NewSigner(foreign)
	if err := v.Verify(f.KeyID(), f.Sign(msg), msg); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), f.KeyID()) {
		t.Errorf("foreign key: %v, want ErrUntrusted naming %s", err, f.KeyID())
	}
	// A foreign signature claiming a trusted key's id.
	if err := v.Verify(NewSigner(cur).KeyID(), f.Sign(msg), msg); !errors.Is(err, ErrBadSignature) {
		t.Errorf("foreign signature under a trusted id: %v, want ErrBadSignature", err)
	}
	if err := v.Verify("", "", msg); !errors.Is(err, ErrUnsigned) {
		t.Errorf("no signature: %v, want ErrUnsigned", err)
	}
	if err := v.Verify(NewSigner(cur).KeyID(), "!!", msg); !errors.Is(err, ErrBadSignature) {
		t.Errorf("malformed signature: %v, want ErrBadSignature", err)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath, err := WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose.key")
	b, _ := os.ReadFile(privPath)
	if err := os.WriteFile(loose, b, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pub")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		load func() error
		path string
		want string
	}{
		{"public as private", func() error { _, err := LoadSigner(pubPath); return err }, pubPath, `"PUBLIC KEY", want "PRIVATE KEY"`},
		{"private as public", func() error { _, err := LoadVerifier(privPath); return err }, privPath, `"PRIVATE KEY", want "PUBLIC KEY"`},
		{"readable by others", func() error { _, err := LoadSigner(loose); return err }, loose, "mode 0644"},
		{"not PEM", func() error { _, err := LoadVerifier(pubPath, garbage); return err }, garbage, "no PEM block"},
		{"missing", func() error { _, err := LoadVerifier(filepath.Join(dir, "nope.pub")); return err }, filepath.Join(dir, "nope.pub"), "no such file"},
	} {
		err := tc.load()
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s and containing %q", tc.name, err, tc.path, tc.want)
		}
	}
}
