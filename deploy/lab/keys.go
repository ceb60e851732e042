package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mfsha/mfsha/internal/sign"
)

// SigningKeys returns the lab cluster's signing key pair: every mfsha process of the lab signs
// with the private key (SIGNING_KEY) and trusts the public one (TRUSTED_KEYS). It is the pair
// `mfsha init` made in the lab's secrets (StartNATS makes them), or, for a lab that has none,
// one made on first use in DIR/keys; once one is used it stays the lab's. Hosts share the
// lab's file system, so one pair serves them all.
func (l *Lab) SigningKeys() (priv, pub string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	own := filepath.Join(l.cfg.Dir, "keys")
	for _, dir := range []string{own, l.secretsDir()} {
		priv, pub = filepath.Join(dir, sign.PrivateFile), filepath.Join(dir, sign.PublicFile)
		if _, err := os.Stat(priv); err == nil {
			return priv, pub, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("lab %s: %w", l.cfg.Name, err)
		}
	}
	if err := os.MkdirAll(own, 0o700); err != nil {
		return "", "", fmt.Errorf("lab %s: %w", l.cfg.Name, err)
	}
	if priv, pub, err = sign.WriteKeyPair(own); err != nil {
		return "", "", fmt.Errorf("lab %s: %w", l.cfg.Name, err)
	}
	return priv, pub, nil
}

// KeyFlags are the mfsha flags that sign with and trust the lab's key pair (see SigningKeys).
func (l *Lab) KeyFlags() ([]string, error) {
	priv, pub, err := l.SigningKeys()
	if err != nil {
		return nil, err
	}
	return []string{"--signing-key", priv, "--trusted-keys", pub}, nil
}
