package failsafe

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mfsha/mfsha/internal/sign"
)

// Hold is the holder's request: "promise not to take the lease of Cluster for Hold".
type Hold struct {
	Cluster string        `json:"cluster"`
	Holder  string        `json:"holder"` // the node holding the lease
	Epoch   uint64        `json:"epoch"`  // its lease's epoch (the revision that took it)
	Seq     uint64        `json:"seq"`    // grows with every round of requests
	Hold    time.Duration `json:"hold"`
}

// Promise is a member's answer to a Hold, echoing it.
type Promise struct {
	Cluster string        `json:"cluster"`
	Member  string        `json:"member"`
	Holder  string        `json:"holder"`
	Epoch   uint64        `json:"epoch"`
	Seq     uint64        `json:"seq"`
	Hold    time.Duration `json:"hold"`
}

// ErrMessage is wrapped by every error about a message that cannot be trusted or understood:
// unsigned, signed by an untrusted key, tampered with, malformed, or with a field out of range.
var ErrMessage = errors.New("failsafe message refused")

// The signed bytes: a fixed prefix per kind, then the fields in order, one per line. No field
// may hold a newline (checked), so two different messages never sign the same bytes, and a
// Hold's signature is never a Promise's.
const (
	holdKind    = "mfsha-failsafe-hold-v1"
	promiseKind = "mfsha-failsafe-promise-v1"
)

func (h Hold) signed() []byte {
	return []byte(strings.Join([]string{holdKind, h.Cluster, h.Holder,
		strconv.FormatUint(h.Epoch, 10), strconv.FormatUint(h.Seq, 10), strconv.FormatInt(int64(h.Hold), 10)}, "\n"))
}

func (p Promise) signed() []byte {
	return []byte(strings.Join([]string{promiseKind, p.Cluster, p.Member, p.Holder,
		strconv.FormatUint(p.Epoch, 10), strconv.FormatUint(p.Seq, 10), strconv.FormatInt(int64(p.Hold), 10)}, "\n"))
}

func (h Hold) check() error {
	if err := names("cluster", h.Cluster, "holder", h.Holder); err != nil {
		return err
	}
	if h.Epoch == 0 {
		return errors.New("epoch 0")
	}
	if h.Hold <= 0 || h.Hold > MaxHold {
		return fmt.Errorf("hold %s: want more than 0 and at most %s", h.Hold, MaxHold)
	}
	return nil
}

func (p Promise) check() error {
	return Hold{Cluster: p.Cluster, Holder: p.Holder, Epoch: p.Epoch, Seq: p.Seq, Hold: p.Hold}.check()
}

func names(kv ...string) error {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" || strings.ContainsAny(kv[i+1], "\n\x00") {
			return fmt.Errorf("%s %q: want a non-empty name without newline", kv[i], kv[i+1])
		}
	}
	return nil
}

// envelope is the wire form: the message, the signing key's id and the signature.
type envelope struct {
	Hold    *Hold    `json:"hold,omitempty"`
	Promise *Promise `json:"promise,omitempty"`
	KeyID   string   `json:"key"`
	Sig     string   `json:"sig"`
}

// SealHold checks h and returns it signed, ready to send.
func SealHold(s *sign.Signer, h Hold) ([]byte, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("seal hold: %w: %w", ErrMessage, err)
	}
	return json.Marshal(envelope{Hold: &h, KeyID: s.KeyID(), Sig: s.Sign(h.signed())})
}

// SealPromise checks p and returns it signed, ready to send.
func SealPromise(s *sign.Signer, p Promise) ([]byte, error) {
	if err := names("member", p.Member); err != nil {
		return nil, fmt.Errorf("seal promise: %w: %w", ErrMessage, err)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("seal promise: %w: %w", ErrMessage, err)
	}
	return json.Marshal(envelope{Promise: &p, KeyID: s.KeyID(), Sig: s.Sign(p.signed())})
}

// OpenHold decodes a sealed Hold and verifies its signature against the trusted keys. Every
// error wraps ErrMessage (and sign's error when the signature is at fault).
func OpenHold(v *sign.Verifier, b []byte) (Hold, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Hold{}, fmt.Errorf("hold: %w: %w", ErrMessage, err)
	}
	if e.Hold == nil || e.Promise != nil {
		return Hold{}, fmt.Errorf("hold: %w: not a hold", ErrMessage)
	}
	if err := v.Verify(e.KeyID, e.Sig, e.Hold.signed()); err != nil {
		return Hold{}, fmt.Errorf("hold: %w: %w", ErrMessage, err)
	}
	if err := e.Hold.check(); err != nil {
		return Hold{}, fmt.Errorf("hold: %w: %w", ErrMessage, err)
	}
	return *e.Hold, nil
}

// OpenPromise decodes a sealed Promise and verifies its signature. Every error wraps ErrMessage.
func OpenPromise(v *sign.Verifier, b []byte) (Promise, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Promise{}, fmt.Errorf("promise: %w: %w", ErrMessage, err)
	}
	if e.Promise == nil || e.Hold != nil {
		return Promise{}, fmt.Errorf("promise: %w: not a promise", ErrMessage)
	}
	if err := v.Verify(e.KeyID, e.Sig, e.Promise.signed()); err != nil {
		return Promise{}, fmt.Errorf("promise: %w: %w", ErrMessage, err)
	}
	if err := names("member", e.Promise.Member); err != nil {
		return Promise{}, fmt.Errorf("promise: %w: %w", ErrMessage, err)
	}
	if err := e.Promise.check(); err != nil {
		return Promise{}, fmt.Errorf("promise: %w: %w", ErrMessage, err)
	}
	return *e.Promise, nil
}
