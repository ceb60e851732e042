// Package durable holds the one step every crash-safe write of mfsha ends with.
package durable

import (
	"fmt"
	"os"
)

// SyncDir fsyncs a directory, so that the renames and creations in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
