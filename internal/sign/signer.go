package sign

import (
	"crypto/ed25519"
	"encoding/base64"
)

// Signer signs with the cluster's private key. It is safe for concurrent use.
type Signer struct {
	priv ed25519.PrivateKey
	id   string
}

// NewSigner wraps a private key.
func NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{priv: priv, id: KeyID(priv.Public().(ed25519.PublicKey))}
}

// LoadSigner reads the private key file at path (see LoadPrivate).
func LoadSigner(path string) (*Signer, error) {
	priv, err := LoadPrivate(path)
	if err != nil {
		return nil, err
	}
	return NewSigner(priv), nil
}

// KeyID is the id of the signer's public key.
func (s *Signer) KeyID() string { return s.id }

// Public is the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign returns the signature of msg, base64 (standard encoding, no padding), as it is written
// into headers and metadata.
func (s *Signer) Sign(msg []byte) string {
	return base64.RawStdEncoding.EncodeToString(ed25519.Sign(s.priv, msg))
}
