package restorer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mfsha/mfsha/internal/durable"
)

// RestoredFile is written by `mfsha restore` beside the metadata.mfs it made. It is how a
// failover node started as master (`mfsha ship --vip`) on that directory knows the operator
// chose this history: it takes a free lease with it although it does not continue the stream,
// and the stream starts a new timeline (see failover's boot). The node deletes it once its
// master serves.
const RestoredFile = "mfsha-restored.json"

// Restored says what a restore made.
type Restored struct {
	Cluster  string    `json:"cluster"`
	Timeline uint64    `json:"timeline"`  // the timeline restored from
	Version  uint64    `json:"version"`   // metadata.mfs's version
	LastTime int64     `json:"last_time"` // the last line applied's timestamp; 0 when none
	At       time.Time `json:"restored_at"`
}

// WriteRestored writes dir/RestoredFile atomically.
func WriteRestored(dir string, r Restored) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dir, RestoredFile), append(b, '\n'), 0o644)
}

// ReadRestored reads dir/RestoredFile; ok is false when there is none.
func ReadRestored(dir string) (r Restored, ok bool, err error) {
	path := filepath.Join(dir, RestoredFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Restored{}, false, nil
	}
	if err != nil {
		return Restored{}, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Restored{}, false, fmt.Errorf("%s: %w", path, err)
	}
	if r.Version == 0 || r.Cluster == "" {
		return Restored{}, false, fmt.Errorf("%s: version and cluster are required", path)
	}
	return r, true, nil
}
