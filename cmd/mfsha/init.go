package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mfsha/mfsha/internal/config"
	"github.com/mfsha/mfsha/internal/secrets"
)

// initCommand is `mfsha init`.
type initCommand struct {
	opts  secrets.Options
	hosts []string
}

const initUsage = `Usage: mfsha init --cluster NAME --out DIR --nats-hosts n1=ADDR,n2=ADDR,n3=ADDR [--force]

Makes a cluster's secrets once, into DIR (mode 0700): the CA of its NATS servers (ca.crt,
ca.key) and each server's certificate (nats-HOST.crt, nats-HOST.key; the host's name and
address as names, for clients and mutual-TLS routes); an nkey user per role (admin.nk, node.nk,
standby.nk, reader.nk) and nats-users.cfg (their public keys, NATS_USERS of the servers); the
cluster signing key (signing.key, signing.pub); and ready configuration files: nats-HOST.cfg
(mfsha nats), nats-server-HOST.conf (the same for nats-server), ship.cfg, standby.cfg,
restore.cfg and status.cfg (read only) and admin.cfg. Secrets are 0600 and never
printed. Copy to each host only what its role needs; ca.key and admin.nk belong on none.

It refuses to replace existing files without --force: new secrets must then reach every host.`

func (c *initCommand) Run(ctx context.Context, args []string) error {
	s := config.New("init", initUsage)
	s.String(&c.opts.Cluster, "cluster", "CLUSTER", "", "MooseFS cluster `name` (the CLUSTER of every mfsha of the cluster)")
	s.String(&c.opts.Out, "out", "OUT", "", "`directory` to write the files to (created 0700)")
	s.String(&c.opts.Path, "path", "INSTALL_PATH", "", "`directory` the files will be in on the hosts, named in the configuration files (default: --out)")
	s.Strings(&c.hosts, "nats-hosts", "NATS_HOSTS", nil, "the NATS servers as `NAME=ADDRESS` items, comma-separated (address: IP or DNS name)")
	s.Bool(&c.opts.Force, "force", "FORCE", false, "replace existing files")
	if err := parse(s, args); err != nil {
		return err
	}
	if c.opts.Cluster == "" {
		return usageError{errors.New("--cluster: required")}
	}
	hosts, err := secrets.ParseHosts(c.hosts)
	if err != nil {
		return usageError{fmt.Errorf("--nats-hosts: %w", err)}
	}
	c.opts.Hosts = hosts
	names, err := secrets.Init(c.opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "wrote %d files to %s:\n", len(names), c.opts.Out)
	for _, n := range names {
		fmt.Fprintf(os.Stdout, "  %s\n", n)
	}
	return nil
}
