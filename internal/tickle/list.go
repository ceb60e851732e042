package tickle

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mfsha/mfsha/internal/sign"
)

// List is what the master's node tells every failover node, about once a second: the
// connections of its host on the VIP, signed with the cluster's key, so that whoever takes
// the VIP next can tickle them. A list is only a hint: a connection closed since gets a tickle
// its client answers with a reset, and one opened since is not tickled (its client finds out
// as without mfsha).
type List struct {
	Cluster string `json:"cluster"`
	Holder  string `json:"holder"`
	Epoch   uint64 `json:"epoch"`
	Seq     uint64 `json:"seq"` // grows with every list of the epoch
	Conns   []Conn `json:"-"`
}

// MaxConns bounds a list: about 40 bytes a connection on the wire.
const MaxConns = 100000

// ErrList is wrapped by every error about a list that cannot be trusted or understood.
var ErrList = errors.New("tickle list refused")

const listKind = "mfsha-tickle-list-v1"

type wire struct {
	List
	Conns []string `json:"conns"`
	KeyID string   `json:"key"`
	Sig   string   `json:"sig"`
}

func (l List) signed(conns []string) []byte {
	return []byte(strings.Join([]string{listKind, l.Cluster, l.Holder, strconv.FormatUint(l.Epoch, 10), strconv.FormatUint(l.Seq, 10),
		strings.Join(conns, ",")}, "\n"))
}

func (l List) check() error {
	for _, f := range [][2]string{{"cluster", l.Cluster}, {"holder", l.Holder}} {
		if f[1] == "" || strings.ContainsAny(f[1], "\n\x00") {
			return fmt.Errorf("%s %q: want a non-empty name without newline", f[0], f[1])
		}
	}
	if l.Epoch == 0 {
		return errors.New("epoch 0")
	}
	if len(l.Conns) > MaxConns {
		return fmt.Errorf("%d connections, at most %d", len(l.Conns), MaxConns)
	}
	return nil
}

// Seal checks l and returns it signed, ready to send.
func Seal(s *sign.Signer, l List) ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, fmt.Errorf("seal: %w: %w", ErrList, err)
	}
	conns := make([]string, len(l.Conns))
	for i, c := range l.Conns {
		conns[i] = c.String()
	}
	return json.Marshal(wire{List: l, Conns: conns, KeyID: s.KeyID(), Sig: s.Sign(l.signed(conns))})
}

// Open decodes a sealed list and verifies its signature against the trusted keys. Every error
// wraps ErrList.
func Open(v *sign.Verifier, b []byte) (List, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return List{}, fmt.Errorf("%w: %w", ErrList, err)
	}
	if err := v.Verify(w.KeyID, w.Sig, w.List.signed(w.Conns)); err != nil {
		return List{}, fmt.Errorf("%w: %w", ErrList, err)
	}
	l := w.List
	for _, s := range w.Conns {
		c, err := ParseConn(s)
		if err != nil {
			return List{}, fmt.Errorf("%w: %w", ErrList, err)
		}
		l.Conns = append(l.Conns, c)
	}
	if err := l.check(); err != nil {
		return List{}, fmt.Errorf("%w: %w", ErrList, err)
	}
	return l, nil
}
