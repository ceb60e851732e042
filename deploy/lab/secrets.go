package lab

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/secrets"
)

// secretsDir is where the lab keeps its cluster's secrets, made by the real `mfsha init` code
// when the NATS cluster first starts.
func (l *Lab) secretsDir() string { return filepath.Join(l.cfg.Dir, "secrets") }

// Secrets returns the directory of the lab's secrets (those of `mfsha init`: ca.crt, the
// roles' .nk seeds, signing.key, signing.pub, ...), made by StartNATS.
func (l *Lab) Secrets() string { return l.secretsDir() }

// makeSecrets makes the secrets for a NATS cluster on hosts, once per lab: a restarted
// cluster keeps them.
func (l *Lab) makeSecrets(hosts []string) (string, error) {
	dir := l.secretsDir()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, secrets.UsersFile)); err == nil {
		for _, h := range hosts {
			if _, err := os.Stat(filepath.Join(dir, secrets.HostCert(h))); err != nil {
				return "", fmt.Errorf("lab %s: secrets in %s were made without NATS host %s", l.cfg.Name, dir, h)
			}
		}
		return dir, nil
	}
	var hs []secrets.Host
	for _, h := range hosts {
		hs = append(hs, secrets.Host{Name: h, Addr: l.HostAddr(h).String()})
	}
	if _, err := secrets.Init(secrets.Options{Cluster: l.cfg.Name, Out: dir, Hosts: hs}); err != nil {
		return "", fmt.Errorf("lab %s: secrets: %w", l.cfg.Name, err)
	}
	return dir, nil
}

// NATSFlags are the client flags of an mfsha command acting as role in the lab: its nkey
// seed and the CA that verifies the lab's NATS servers.
func (l *Lab) NATSFlags(role natsconn.Role) []string {
	dir := l.secretsDir()
	return []string{"--nats-nkey", filepath.Join(dir, secrets.SeedFile(role)), "--nats-tls-ca", filepath.Join(dir, secrets.CACert)}
}

func (l *Lab) rolePublicKey(role natsconn.Role) (string, error) {
	u, err := natsconn.LoadUsers(filepath.Join(l.secretsDir(), secrets.UsersFile))
	if err != nil {
		return "", fmt.Errorf("lab %s: %w", l.cfg.Name, err)
	}
	return u.Keys[role], nil
}
