// Package sign holds a cluster's ed25519 signing key and the public keys its readers trust.
//
// File formats (the contract with `mfsha init`):
//   - private key: PEM block "PRIVATE KEY", PKCS#8 (x509.MarshalPKCS8PrivateKey), mode 0600;
//   - public key: PEM block "PUBLIC KEY", PKIX (x509.MarshalPKIXPublicKey).
//
// A key id is the hex of the first 8 bytes of the SHA-256 of the raw 32-byte public key
// (16 characters). It names the key that made a signature, so that a reader trusting several
// keys (a rotation) knows which one to check against.
package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mfsha/mfsha/internal/durable"
)

// File names WriteKeyPair uses in its directory.
const (
	PrivateFile = "signing.key"
	PublicFile  = "signing.pub"
)

const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
)

// KeyID is the id of a public key: hex of the first 8 bytes of SHA-256 of its 32 raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Generate makes a new ed25519 key pair from crypto/rand.
func Generate() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return priv, nil
}

// WriteKeyPair generates a key pair and writes it to dir as PrivateFile (0600) and PublicFile
// (0644), each atomically. It refuses to replace an existing key file: losing the cluster's
// key would make every reader refuse what is shipped next. It returns the two paths.
func WriteKeyPair(dir string) (privPath, pubPath string, err error) {
	privPath, pubPath = filepath.Join(dir, PrivateFile), filepath.Join(dir, PublicFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("signing key %s: already exists; not replaced", p)
		}
	}
	priv, err := Generate()
	if err != nil {
		return "", "", err
	}
	if err := WritePrivate(privPath, priv); err != nil {
		return "", "", err
	}
	if err := WritePublic(pubPath, priv.Public().(ed25519.PublicKey)); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

// EncodePrivate returns priv in the private key file format (PEM "PRIVATE KEY", PKCS#8).
func EncodePrivate(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// EncodePublic returns pub in the public key file format (PEM "PUBLIC KEY", PKIX).
func EncodePublic(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// WritePrivate writes priv to path in the private key format, mode 0600, atomically.
func WritePrivate(path string, priv ed25519.PrivateKey) error {
	b, err := EncodePrivate(priv)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", path, err)
	}
	return durable.WriteFile(path, b, 0o600)
}

// WritePublic writes pub to path in the public key format, mode 0644, atomically.
func WritePublic(path string, pub ed25519.PublicKey) error {
	b, err := EncodePublic(pub)
	if err != nil {
		return fmt.Errorf("public key %s: %w", path, err)
	}
	return durable.WriteFile(path, b, 0o644)
}

// LoadPrivate reads a private key file. Errors name the file and what is wrong with it; a key
// file that others may read or write is refused (the key would no longer be the cluster's
// alone).
func LoadPrivate(path string) (ed25519.PrivateKey, error) {
	block, err := readPEM(path, pemPrivate)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: mode %04o: others may read it; want 0600 (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: a %T, want an ed25519 key", path, k)
	}
	return priv, nil
}

// LoadPublic reads a public key file. Errors name the file.
func LoadPublic(path string) (ed25519.PublicKey, error) {
	block, err := readPEM(path, pemPublic)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key %s: a %T, want an ed25519 key", path, k)
	}
	return pub, nil
}

// readPEM reads the one PEM block of type want in path.
func readPEM(path, want string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("key file %s: no PEM block", path)
	case block.Type != want:
		return nil, fmt.Errorf("key file %s: PEM block %q, want %q", path, block.Type, want)
	case len(pemTrim(rest)) != 0:
		return nil, fmt.Errorf("key file %s: data after the %q block", path, want)
	}
	return block, nil
}

func pemTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
