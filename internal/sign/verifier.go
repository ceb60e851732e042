package sign

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Errors of Verify; match with errors.Is. The caller wraps them with what was checked.
var (
	// ErrUnsigned: no signature or no key id.
	ErrUnsigned = errors.New("not signed")
	// ErrUntrusted: signed by a key that is not among the trusted ones.
	ErrUntrusted = errors.New("signed by a key that is not trusted")
	// ErrBadSignature: the signature does not match the content (forged or tampered).
	ErrBadSignature = errors.New("signature does not match the content")
)

// Verifier checks signatures against a set of trusted public keys: several at once during a
// key rotation. It is safe for concurrent use.
type Verifier struct {
	keys map[string]ed25519.PublicKey
}

// NewVerifier trusts the given keys; at least one.
func NewVerifier(keys ...ed25519.PublicKey) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no trusted public key")
	}
	v := &Verifier{keys: map[string]ed25519.PublicKey{}}
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("public key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		v.keys[KeyID(k)] = k
	}
	return v, nil
}

// LoadVerifier reads the public key files at paths (see LoadPublic); errors name the file.
func LoadVerifier(paths ...string) (*Verifier, error) {
	var keys []ed25519.PublicKey
	for _, p := range paths {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, err := LoadPublic(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no trusted public key file given")
	}
	return NewVerifier(keys...)
}

// Keys lists the trusted public keys.
func (v *Verifier) Keys() []ed25519.PublicKey {
	keys := make([]ed25519.PublicKey, 0, len(v.keys))
	for _, k := range v.keys {
		keys = append(keys, k)
	}
	return keys
}

// KeyIDs lists the trusted keys' ids, for logs.
func (v *Verifier) KeyIDs() []string {
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	return ids
}

// Verify checks that sig (as Signer.Sign writes it) is keyID's signature of msg and that
// keyID is trusted. It is ErrUnsigned, ErrUntrusted (naming the key id) or ErrBadSignature.
func (v *Verifier) Verify(keyID, sig string, msg []byte) error {
	if keyID == "" || sig == "" {
		return ErrUnsigned
	}
	k, ok := v.keys[keyID]
	if !ok {
		return fmt.Errorf("key id %s: %w", keyID, ErrUntrusted)
	}
	raw, err := base64.RawStdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("key id %s: malformed signature: %w", keyID, ErrBadSignature)
	}
	if !ed25519.Verify(k, msg, raw) {
		return fmt.Errorf("key id %s: %w", keyID, ErrBadSignature)
	}
	return nil
}
