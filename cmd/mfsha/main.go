// Command mfsha gives the MooseFS master high availability and point-in-time recovery:
// `mfsha ship` publishes the master's metadata history to NATS JetStream, `mfsha status`
// shows what the stream holds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, documented in the README.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitGap    = 3 // shipping stopped at a changelog gap (lines the stream needs are gone) or at a line that cannot be shipped
	exitFenced = 4 // another writer owns the stream
)

type command interface {
	Run(ctx context.Context, args []string) error
}

var commands = []struct {
	name, summary string
	cmd           func() command
}{
	{"init", "make a cluster's secrets once: NATS CA and certificates, users per role, signing key, configs", func() command { return &initCommand{} }},
	{"ship", "publish a master's (or metalogger's) changelog and snapshots to NATS JetStream", func() command { return &shipCommand{} }},
	{"nats", "run one node of the NATS JetStream cluster that mfsha uses (the server it embeds)", func() command { return &natsCommand{} }},
	{"restore", "rebuild metadata.mfs as of a time or version from snapshots and the changelog stream", func() command { return &restoreCommand{} }},
	{"standby", "keep a metadata.mfs materialized from the stream, ready for a promotion", func() command { return &standbyCommand{} }},
	{"status", "show the lease, the nodes, the stream's timelines and snapshots", func() command { return &statusCommand{} }},
	{"switchover", "hand the master role to a standby, with nothing lost", func() command { return &switchoverCommand{} }},
	{"members", "list the failover nodes that may take an expired lease; --forget them once all are gone", func() command { return &membersCommand{} }},
	{"version", "print the version, commit and Go version of this build (also: --version)", func() command { return &versionCommand{} }},
}

func usage() {
	fmt.Fprintf(os.Stderr, `mfsha: high availability and point-in-time recovery for the MooseFS master.

Usage: mfsha COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'mfsha COMMAND --help' for the flags of a command.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(exitUsage)
		}
		return
	}
	if os.Args[1] == "--version" || os.Args[1] == "-version" {
		os.Args[1] = "version"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == os.Args[1] {
			os.Exit(exitCode(c.cmd().Run(ctx, os.Args[2:])))
		}
	}
	fmt.Fprintf(os.Stderr, "mfsha: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(exitUsage)
}

// usageError is a bad flag or setting; it has been printed with the command's usage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func exitCode(err error) int {
	var ue usageError
	var ce codedError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "mfsha:", err)
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintln(os.Stderr, "mfsha:", err)
		return ce.code
	}
	fmt.Fprintln(os.Stderr, "mfsha:", err)
	return exitError
}

// codedError carries a specific exit code.
type codedError struct {
	err  error
	code int
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }
