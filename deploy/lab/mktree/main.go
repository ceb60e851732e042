// Command mktree makes a realistic MooseFS metadata file for scale measurements: a directory
// tree with files and chunks, hard links, symlinks and xattrs (lab.MakeTree), folded by the
// real mfsmaster, and prints what it made and what that cost.
//
//	go run ./deploy/lab/mktree -inodes 1000000 -out /var/tmp/meta1m [-mfsmaster /usr/sbin/mfsmaster]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
)

func main() {
	spec := lab.TreeSpec{MetaID: 4242, Time: 1700000000}
	flag.IntVar(&spec.Inodes, "inodes", 1000000, "directories, files and symlinks to make")
	flag.Int64Var(&spec.Seed, "seed", 1, "random seed (the same seed makes the same tree)")
	out := flag.String("out", "", "directory to write metadata.mfs into (required)")
	master := flag.String("mfsmaster", "", "mfsmaster binary (default: the one of MFSHA_MOOSEFS)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "mktree: -out is required")
		os.Exit(2)
	}
	if *master == "" {
		p, err := mfstest.Path("mfsmaster")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mktree:", err)
			os.Exit(2)
		}
		*master = p
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, r, err := lab.MakeTree(ctx, *master, *out, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mktree:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s\n", filepath.Join(*out, "metadata.mfs"), st)
	fmt.Printf("version %d, metadata %d MB; changelog written in %.1f s, folded by %s in %.1f s, peak RSS %d MB (%d bytes/inode)\n",
		r.Version, r.Size>>20, r.Generate.Seconds(), *master, r.Fold.Seconds(), r.MaxRSS>>20, r.MaxRSS/int64(spec.Inodes))
}
