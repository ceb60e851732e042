// Command mktree makes a realistic MooseFS metadata file for scale measurements: a directory
// tree with files and chunks, hard links, symlinks and xattrs (lab.MakeTree), folded by the
// real mfsmaster, and prints what it made and what that cost.
//
//	go run ./deploy/lab/mktree -inodes 1000000 -out /var/tmp/meta1m [-mfsmaster /usr/sbin/mfsmaster]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
)

func main() {
	spec := lab.TreeSpec{MetaID: 4242, Time: 1700000000}
	flag.IntVar(&spec.Inodes, "inodes", 1000000, "directories, files and symlinks to make")
	flag.Int64Var(&spec.Seed, "seed", 1, "random seed (the same seed makes the same tree)")
	out := flag.String("out", "", "directory to write metadata.mfs into (required)")
	master := flag.String("mfsmaster", "", "mfsmaster binary (default: the one of MFSHA_MOOSEFS)")
	existing := flag.Bool("existing", false, "measure the metadata.mfs already in -out (made by mktree with the same -inodes) instead of making one")
	foldLines := flag.Int("fold-lines", 0, "then measure a standby's fold: this many new lines onto the metadata")
	load := flag.Bool("load", false, "then measure mfsmaster's load time (start until its client port, on 127.0.0.1, accepts)")
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
	meta := filepath.Join(*out, "metadata.mfs")
	if !*existing {
		st, r, err := lab.MakeTree(ctx, *master, *out, spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mktree:", err)
			os.Exit(1)
		}
		fmt.Printf("%s: %s\n", meta, st)
		fmt.Printf("version %d, metadata %d MB; changelog written in %.1f s, folded by %s in %.1f s, peak RSS %d MB (%d bytes/inode)\n",
			r.Version, r.Size>>20, r.Generate.Seconds(), *master, r.Fold.Seconds(), r.MaxRSS>>20, r.MaxRSS/int64(spec.Inodes))
	}
	if *foldLines > 0 {
		version, err := metaVersion(meta)
		if err == nil {
			var took time.Duration
			var rss int64
			took, rss, err = lab.FoldCost(ctx, *master, meta, version, uint32(spec.Inodes+1), *foldLines)
			if err == nil {
				fmt.Printf("fold of %d lines onto it: %.1f s, peak RSS %d MB\n", *foldLines, took.Seconds(), rss>>20)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mktree:", err)
			os.Exit(1)
		}
	}
	if *load {
		took, rss, err := lab.LoadCost(ctx, *master, meta)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mktree:", err)
			os.Exit(1)
		}
		fmt.Printf("load until serving: %.1f s, RSS %d MB\n", took.Seconds(), rss>>20)
	}
}

// metaVersion reads the version of a metadata file's header.
func metaVersion(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(f, head); err != nil {
		return 0, fmt.Errorf("%s: header: %w", path, err)
	}
	if string(head[:8]) != "MFSM 2.0" {
		return 0, fmt.Errorf("%s: header %q, want MFSM 2.0", path, head[:8])
	}
	return binary.BigEndian.Uint64(head[8:]), nil
}
