package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/internal/config"
)

// versionCommand is `mfsha version` (and `mfsha --version`).
type versionCommand struct{ json bool }

const versionUsage = `Usage: mfsha version [--json]

Prints the version of this mfsha (set when it was built: make build, make deb), the commit it
was built from and the Go version, e.g.
  mfsha 0.1.0 (commit 91cc18f2..., 2026-12-02T14:00:00Z, go1.26.8)`

func (c *versionCommand) Run(ctx context.Context, args []string) error {
	s := config.New("version", versionUsage)
	s.FlagSet().BoolVar(&c.json, "json", false, "print the build information as JSON")
	if err := parse(s, args); err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(os.Stdout).Encode(buildinfo.Get())
	}
	_, err := fmt.Println(buildinfo.Get())
	return err
}
