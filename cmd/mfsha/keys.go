package main

import (
	"errors"
	"fmt"

	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/sign"
)

// keySettings are the cluster's signing keys: SIGNING_KEY on a host that ships (it signs
// every batch and snapshot), TRUSTED_KEYS on every host that folds what was shipped (restore,
// standby, a failover node). Both are made by `mfsha init`. There is no setting that turns
// the signatures off.
type keySettings struct {
	signingKey  string
	trustedKeys []string
}

func (k *keySettings) bindSigning(s *config.Set) {
	s.String(&k.signingKey, "signing-key", "SIGNING_KEY", "", "the cluster's private signing key `file` (PEM, 0600; made by mfsha init): signs every batch and snapshot")
}

func (k *keySettings) bindTrusted(s *config.Set) {
	s.Strings(&k.trustedKeys, "trusted-keys", "TRUSTED_KEYS", nil, "public key `files` (PEM, comma-separated; made by mfsha init) whose signatures are accepted; several during a key rotation")
}

// signer loads SIGNING_KEY; the error names the setting and the file.
func (k *keySettings) signer() (*sign.Signer, error) {
	if k.signingKey == "" {
		return nil, errors.New("SIGNING_KEY: not set: every batch and snapshot shipped is signed with the cluster's key (make it with mfsha init)")
	}
	s, err := sign.LoadSigner(k.signingKey)
	if err != nil {
		return nil, fmt.Errorf("SIGNING_KEY: %w", err)
	}
	return s, nil
}

// verifier loads TRUSTED_KEYS; the error names the setting and the file.
func (k *keySettings) verifier() (*sign.Verifier, error) {
	if len(k.trustedKeys) == 0 {
		return nil, errors.New("TRUSTED_KEYS: not set: batches and snapshots are folded only when signed by a trusted key (make the keys with mfsha init)")
	}
	v, err := sign.LoadVerifier(k.trustedKeys...)
	if err != nil {
		return nil, fmt.Errorf("TRUSTED_KEYS: %w", err)
	}
	return v, nil
}
