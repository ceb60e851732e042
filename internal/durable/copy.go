package durable

import (
	"io"
	"os"
)

// CopyFile copies src to dst (created, or truncated if it exists) and fsyncs dst before it
// returns. The caller syncs dst's directory when the copy must survive a crash.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
