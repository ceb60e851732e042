// Package natsconn connects mfsha to NATS: to an existing cluster given by URLs, credentials
// and TLS files, or to a JetStream server embedded in the process when no URL is given.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Options says how to reach NATS.
type Options struct {
	URLs    []string // empty: use the embedded server
	Creds   string   // credentials file (JWT + nkey), optional
	TLSCA   string   // CA file to verify the servers, optional
	TLSCert string   // client certificate, optional (with TLSKey)
	TLSKey  string
	Name    string // connection name shown by the servers
}

// Validate checks the relations between the fields.
func (o Options) Validate() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("NATS_TLS_CERT and NATS_TLS_KEY: give both or neither")
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
	if len(o.URLs) == 0 {
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
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
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
