package failover

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ClientGate holds a master's clients back while its chunkservers still hear it: an nftables
// rule, in the network namespace of the calling OS thread (for the agent: the host's own),
// drops the TCP packets that other hosts send to the VIP's client port (MATOCL_LISTEN_PORT),
// and nothing else.
//
// Why (DESIGN.md, "A new chunk that no chunkserver created", the client gate): mfsmaster
// logs the WRITE that gives a client a new chunk before the packet that tells a chunkserver
// to create it leaves, over that chunkserver's connection to the VIP. A switchover that removed the VIP first could cut that
// packet off: every later master then has the chunk with no copy, and the writer waits for
// the repair that follows the promotion (about 4 s, lostchunks.go). With the gate closed
// first, no new request reaches mfsmaster while the VIP still carries its packets to the
// chunkservers; the switchover removes the VIP only once mfsmaster has answered two health
// checks at the same version (waitTurn).
//
// Safety: the gate only drops. A client whose packet it dropped sends it again, and reaches
// the new master once the VIP has moved (the new master's tickle resets its connection). A
// gate left closed (the node killed mid-switchover) would cut this host's clients off the next
// time it serves, so every term opens the gate before it claims the VIP, and a node opens it
// when it starts (Open is idempotent).
type ClientGate struct {
	addr netip.Addr
	port uint16
}

// gateTable is the nftables table the gate owns (family ip): created by Close, deleted by
// Open, never shared with anything else.
const gateTable = "mfsha_client_gate"

// NewClientGate returns the gate of the client port port on the IPv4 address addr (the VIP).
func NewClientGate(addr netip.Addr, port uint16) (*ClientGate, error) {
	if !addr.Is4() || port == 0 {
		return nil, fmt.Errorf("client gate: %s port %d: want an IPv4 address and a port", addr, port)
	}
	return &ClientGate{addr: addr, port: port}, nil
}

// String is e.g. "10.0.0.100:9421".
func (g *ClientGate) String() string { return netip.AddrPortFrom(g.addr, g.port).String() }

// Close starts dropping TCP packets to the gate's address and port.
func (g *ClientGate) Close() error {
	if err := g.Open(); err != nil { // one rule, whatever an earlier run left
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("client gate %s: %w", g, err)
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: gateTable})
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	port := binary.BigEndian.AppendUint16(nil, g.port)
	lo := make([]byte, unix.IFNAMSIZ)
	copy(lo, "lo")
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		// iifname != "lo": the node's own health checks pass, whatever address mfsmaster
		// listens on
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo},
		// ip protocol tcp
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		// ip daddr ADDR (offset 16 of the IPv4 header)
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: g.addr.AsSlice()},
		// tcp dport PORT (offset 2 of the TCP header)
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("client gate %s: close: %w", g, err)
	}
	return nil
}

// Open removes the gate's table if there is one.
func (g *ClientGate) Open() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("client gate %s: %w", g, err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("client gate %s: list tables: %w", g, err)
	}
	for _, t := range tables {
		if t.Name == gateTable {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("client gate %s: open: %w", g, err)
			}
		}
	}
	return nil
}
