// Package natsconn connects mfsha to NATS: to an existing cluster given by URLs, credentials
// and TLS files, or to a JetStream server embedded in the process when no URL is given.
package natsconn

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Options says how to reach NATS.
type Options struct {
	URLs    []string // empty: use the embedded server
	Creds   string   // credentials file (JWT + nkey, decentralized auth), optional
	NKey    string   // nkey seed file (mfsha's own servers: a role's .nk made by mfsha init), optional
	TLSCA   string   // CA file to verify the servers, optional
	TLSCert string   // client certificate, optional (with TLSKey)
	TLSKey  string
	Name    string // connection name shown by the servers

	// InProcess, when set, connects to this server in-process (the embedded server of the
	// same process): no socket, no TLS, but the same authentication and permissions.
	InProcess nats.InProcessConnProvider
}

// Validate checks the relations between the fields.
func (o Options) Validate() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("NATS_TLS_CERT and NATS_TLS_KEY: give both or neither")
	}
	if o.Creds != "" && o.NKey != "" {
		return errors.New("NATS_CREDS and NATS_NKEY: give one (a JWT credentials file or an nkey seed), not both")
	}
	for _, u := range o.URLs {
		if !strings.Contains(u, "://") {
			return fmt.Errorf("NATS_URL %q: want a URL like nats://host:4222", u)
		}
	}
	return nil
}

// Connect dials the servers. The connection reconnects forever: the caller decides what an
// outage means, and a shipper keeps reading from its files while NATS is away.
func Connect(ctx context.Context, o Options, log *slog.Logger) (*nats.Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(o.URLs) == 0 && o.InProcess == nil {
		return nil, errors.New("no NATS URL")
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.Timeout(5 * time.Second),
		// A server whose host died sends no RST: without pings the client writes into a dead
		// socket for minutes (nats.go pings every 2 minutes by default). Notice in about 6 s
		// and move to another server of the cluster.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		// Asynchronous errors, permission violations among them (a role asked for what it may
		// not do): logged, the operation that caused one fails on its own.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("NATS error", "err", err) }),
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		nk, err := nkeyOptions(o.NKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nk...)
	}
	if o.InProcess != nil {
		opts = append(opts, nats.InProcessServer(o.InProcess))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	var nc *nats.Conn
	var err error
	for {
		nc, err = nats.Connect(strings.Join(o.URLs, ","), opts...)
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			// Retrying cannot fix a credential the servers refuse.
			return nil, fmt.Errorf("connect to NATS %v: %w (check NATS_NKEY / NATS_CREDS)", o.URLs, err)
		}
		var unknownCA x509.UnknownAuthorityError
		var badName x509.HostnameError
		if errors.As(err, &unknownCA) || errors.As(err, &badName) {
			// Nor a server whose certificate does not verify.
			return nil, fmt.Errorf("connect to NATS %v: %w (check NATS_TLS_CA: the CA that signed the servers' certificates, ca.crt made by mfsha init)", o.URLs, err)
		}
		if err == nil {
			return nc, nil
		}
		log.Warn("NATS connect failed, retrying", "urls", o.URLs, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS %v: %w", o.URLs, err)
		case <-time.After(time.Second):
		}
	}
}

// nkeyOptions authenticate with the nkey seed in file and use the user's own reply inbox (see
// InboxPrefix), the only one its permissions let it subscribe to. The seed stays in memory;
// it is never logged.
func nkeyOptions(file string) ([]nats.Option, error) {
	seed, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("NATS_NKEY: %w", err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return nil, fmt.Errorf("NATS_NKEY %s: not an nkey seed: %w", file, err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("NATS_NKEY %s: not a user seed (SU...)", file)
	}
	sign := func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) }
	return []nats.Option{nats.Nkey(pub, sign), nats.CustomInboxPrefix(InboxPrefix(pub))}, nil
}
