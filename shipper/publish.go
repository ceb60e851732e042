package shipper

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// publisher appends sealed batches to the cluster's stream as its only writer. Publishes are
// pipelined: batch k expects the stream's last sequence to be the one batch k-1 got, so a
// second writer makes every later publish fail with ErrNotSoleWriter. It is not safe for
// concurrent use.
type publisher struct {
	js       jetstream.JetStream
	signer   *sign.Signer
	cluster  string
	expect   uint64 // the stream's last sequence after every batch sent so far is stored
	window   int
	inflight []inflight
	onAck    func(sealed, *jetstream.PubAck)
	dup      bool // a publish was a duplicate: sequences must be re-read before going on
}

type inflight struct {
	b   sealed
	fut jetstream.PubAckFuture
}

func newPublisher(js jetstream.JetStream, signer *sign.Signer, cluster string, lastSeq uint64, window int, onAck func(sealed, *jetstream.PubAck)) *publisher {
	return &publisher{js: js, signer: signer, cluster: cluster, expect: lastSeq, window: window, onAck: onAck}
}

// publish sends b, waiting for the oldest acknowledgement while the window is full.
func (p *publisher) publish(ctx context.Context, b sealed) error {
	for len(p.inflight) >= p.window {
		if err := p.waitOne(ctx); err != nil {
			return err
		}
	}
	subj := stream.Subject(p.cluster, b.info.Timeline)
	msg := &nats.Msg{Subject: subj, Header: stream.SignedHeader(p.signer, subj, b.info, b.payload), Data: b.payload}
	fut, err := p.js.PublishMsgAsync(msg,
		jetstream.WithMsgID(stream.MsgID(b.info.Timeline, b.info.FirstVersion, b.info.LastVersion)),
		jetstream.WithExpectLastSequence(p.expect))
	if err != nil {
		return fmt.Errorf("publish versions %d..%d: %w", b.info.FirstVersion, b.info.LastVersion, err)
	}
	p.expect++
	p.inflight = append(p.inflight, inflight{b: b, fut: fut})
	return nil
}

// waitAll waits until every batch sent is acknowledged or one fails.
func (p *publisher) waitAll(ctx context.Context) error {
	for len(p.inflight) > 0 {
		if err := p.waitOne(ctx); err != nil {
			return err
		}
	}
	return nil
}

// reap handles the acknowledgements that have already arrived, without waiting.
func (p *publisher) reap() error {
	for len(p.inflight) > 0 {
		f := p.inflight[0].fut
		select {
		case ack := <-f.Ok():
			if err := p.done(ack, nil); err != nil {
				return err
			}
		case err := <-f.Err():
			return p.done(nil, err)
		default:
			return nil
		}
	}
	return nil
}

// waitOne waits for the oldest batch in flight to be acknowledged or to fail.
func (p *publisher) waitOne(ctx context.Context) error {
	f := p.inflight[0].fut
	select {
	case <-ctx.Done():
		return ctx.Err()
	case ack := <-f.Ok():
		return p.done(ack, nil)
	case err := <-f.Err():
		return p.done(nil, err)
	}
}

// done retires the oldest batch in flight with its outcome.
func (p *publisher) done(ack *jetstream.PubAck, err error) error {
	f := p.inflight[0]
	p.inflight = p.inflight[1:]
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("publish versions %d..%d on timeline %d: %w (%v)", f.b.info.FirstVersion, f.b.info.LastVersion, f.b.info.Timeline, ErrNotSoleWriter, err)
		}
		return fmt.Errorf("publish versions %d..%d on timeline %d: %w", f.b.info.FirstVersion, f.b.info.LastVersion, f.b.info.Timeline, err)
	}
	if ack.Duplicate {
		// Stored before (an earlier attempt whose ack was lost): the data is there, but the
		// sequences expected by later batches are off by one.
		p.dup = true
	}
	p.onAck(f.b, ack)
	if p.dup {
		return errResync
	}
	return nil
}

// errResync asks the session to re-read the stream's tail and start over from it.
var errResync = errors.New("stream position must be re-read")
