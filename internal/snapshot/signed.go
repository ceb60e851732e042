package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// errNoSigner and errNoVerifier: a store used to upload or download without its key. There
// is no unsigned mode: a snapshot is the base every restore and promotion folds onto.
var (
	errNoSigner   = errors.New("no signing key (SIGNING_KEY; make one with mfsha init)")
	errNoVerifier = errors.New("no trusted public key (TRUSTED_KEYS; make them with mfsha init)")
)

// WithSigner returns a store that signs what it uploads with s (Upload needs one).
func (s *Store) WithSigner(sg *sign.Signer) *Store {
	c := *s
	c.signer = sg
	return &c
}

// WithVerifier returns a store that checks what it downloads against v (Download needs one).
func (s *Store) WithVerifier(v *sign.Verifier) *Store {
	c := *s
	c.verifier = v
	return &c
}

// signedBytes is what a snapshot's signature covers (see stream.SnapshotSigned).
func (s *Store) signedBytes(snap Snapshot) []byte {
	return stream.SnapshotSigned(s.bucket, snap.Name, snap.Timeline, snap.Version, snap.MetaID, snap.Time, snap.Size, snap.SHA256, snap.Source, snap.MooseFS)
}

// signMetadata adds the signature of snap to its object metadata md.
func (s *Store) signMetadata(snap Snapshot, md map[string]string) {
	md[stream.SnapKeyID] = s.signer.KeyID()
	md[stream.SnapSig] = s.signer.Sign(s.signedBytes(snap))
}

// verify checks the signature in an object's metadata against the decoded snapshot, before
// any of its data is read. The error names the object and wraps sign.ErrUnsigned,
// sign.ErrUntrusted or sign.ErrBadSignature.
func (s *Store) verify(oi *jetstream.ObjectInfo, snap Snapshot) error {
	if s.verifier == nil {
		return fmt.Errorf("snapshot object %s/%s: %w", s.bucket, snap.Name, errNoVerifier)
	}
	md := oi.Metadata
	if err := s.verifier.Verify(md[stream.SnapKeyID], md[stream.SnapSig], s.signedBytes(snap)); err != nil {
		return fmt.Errorf("snapshot object %s/%s: refused: %w", s.bucket, snap.Name, err)
	}
	return nil
}

// signedByUs reports whether an object's metadata carries a valid signature by this store's
// own key.
func (s *Store) signedByUs(oi *jetstream.ObjectInfo, snap Snapshot) bool {
	md := oi.Metadata
	if md[stream.SnapKeyID] != s.signer.KeyID() {
		return false
	}
	v, err := sign.NewVerifier(s.signer.Public())
	return err == nil && v.Verify(md[stream.SnapKeyID], md[stream.SnapSig], s.signedBytes(snap)) == nil
}

// resign replaces a stored object's metadata by the same, signed with this store's key, if
// the metadata is still the one at sequence prev (else errRaced).
func (s *Store) resign(ctx context.Context, oi *jetstream.ObjectInfo, snap Snapshot, prev uint64) error {
	md := maps.Clone(oi.Metadata)
	s.signMetadata(snap, md)
	c := *oi
	c.Metadata = md
	return s.publishMeta(ctx, &c, prev)
}
