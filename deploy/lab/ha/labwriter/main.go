// Command labwriter is the lab's continuous client (see ha.StartWriter): run inside a host's
// network namespace against a MooseFS mount, it writes small files without pause, or reads
// them back.
//
//	labwriter write DIR    create DIR, then write DIR/w0000001, DIR/w0000002, ... (create,
//	                       write, close) until killed; after each close that returned without
//	                       an error print "ack NAME UNIX_NANOS" on stdout; print each failure
//	                       as "fail NAME UNIX_NANOS ERROR" and go on with the next name
//	labwriter verify DIR   read the names on stdin (one a line) and check each file's
//	                       content; print "bad NAME REASON" for each wrong one and
//	                       "checked N bad M" at the end; exit 1 if any was wrong
//
// A file's content is ha.WriterContent(NAME).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mfsha/mfsha/deploy/lab/ha"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: labwriter write|verify DIR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "write":
		err = write(os.Args[2])
	case "verify":
		err = verify(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q: want write or verify", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labwriter:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := os.Stdout // unbuffered: an ack is on the pipe once close returned
	for i := 1; ; i++ {
		name := fmt.Sprintf("w%07d", i)
		if err := writeOne(filepath.Join(dir, name), ha.WriterContent(name)); err != nil {
			fmt.Fprintf(out, "fail %s %d %v\n", name, time.Now().UnixNano(), err)
			time.Sleep(10 * time.Millisecond) // a mount that fails at once must not flood the pipe
			continue
		}
		if _, err := fmt.Fprintf(out, "ack %s %d\n", name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("report %s: %w", name, err)
		}
	}
}

func writeOne(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func verify(dir string) error {
	sc := bufio.NewScanner(os.Stdin)
	var checked, bad int
	for sc.Scan() {
		name := sc.Text()
		if name == "" {
			continue
		}
		checked++
		got, err := os.ReadFile(filepath.Join(dir, name))
		switch want := ha.WriterContent(name); {
		case err != nil:
			bad++
			fmt.Printf("bad %s %v\n", name, err)
		case !bytes.Equal(got, want):
			bad++
			fmt.Printf("bad %s content %q, want %q\n", name, got, want)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the names on stdin: %w", err)
	}
	fmt.Printf("checked %d bad %d\n", checked, bad)
	if bad > 0 {
		return fmt.Errorf("%d of %d files wrong", bad, checked)
	}
	return nil
}
