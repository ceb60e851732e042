package natsconn_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/secrets"
)

// TestInProcessToSecuredServer: `mfsha ship` reaches its own secured embedded server
// in-process (no TLS to itself), with its nkey and the node's permissions.
func TestInProcessToSecuredServer(t *testing.T) {
	dir := initSecrets(t, "s1")
	srv, err := natsconn.StartEmbedded(natsconn.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "s1", Security: security(dir, "s1")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	nc, err := natsconn.Connect(ctx, natsconn.Options{URLs: []string{natsconn.InProcessURL(srv)}, InProcess: srv, NKey: filepath.Join(dir, secrets.SeedFile(natsconn.RoleNode))},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Logf("connected in %v", time.Since(start))
	if _, err := nc.RequestWithContext(ctx, "$JS.API.INFO", nil); err != nil {
		t.Fatal(err)
	}
}
