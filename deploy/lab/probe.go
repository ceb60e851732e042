package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mfsha/mfsha/internal/mfsclient"
	"github.com/mfsha/mfsha/internal/mfsinfo"
)

// MooseFS master ports.
const (
	PortMasterMeta  = 9419 // metaloggers (MATOML)
	PortMasterChunk = 9420 // chunkservers (MATOCS)
	PortMasterCl    = 9421 // clients and tools (MATOCL)
)

// Packet types of the MATOCL protocol used here (MFSCommunication.h, PROTO_BASE 0).
const (
	cltomaCservList = 500
	matoclCservList = 501
	cltomaInfo      = 510
	matoclInfo      = 511
	cltomaMlogList  = 522
	matoclMlogList  = 523
)

// maxPacket bounds the payload the probes accept.
const maxPacket = 16 << 20

// ErrBadReply is wrapped by the probes when the master's answer cannot be decoded.
var ErrBadReply = errors.New("bad reply from master")

// MasterInfo is the part of the master's CLTOMA_INFO answer the lab uses.
type MasterInfo struct {
	Version     string // MooseFS version, "3.0.117"
	MetaVersion uint64 // the next change id, as in metadata.mfs
	TotalSpace  uint64 // bytes, as reported by the chunkservers
	AvailSpace  uint64
	Inodes      uint32
	Chunks      uint32
}

// ChunkserverInfo is one entry of the master's chunkserver list.
type ChunkserverInfo struct {
	Addr       netip.AddrPort // address and port the chunkserver serves clients on
	Connected  bool
	Version    string
	UsedSpace  uint64
	TotalSpace uint64
	Chunks     uint32
}

// MetaloggerInfo is one entry of the master's list of connected metaloggers.
type MetaloggerInfo struct {
	Addr    netip.Addr
	Version string
}

// MasterVersion asks the master at addr (IP:port of its client port, 9421) for its metadata
// version with CLTOMA_INFO, without registering. An answer means the master is serving.
func MasterVersion(ctx context.Context, dial DialFunc, addr string) (uint64, error) {
	info, err := ProbeMaster(ctx, dial, addr)
	return info.MetaVersion, err
}

// ProbeMaster sends CLTOMA_INFO to the master at addr and decodes the answer (its layout
// depends on the MooseFS version: internal/mfsinfo); an answer of a layout it does not know
// wraps ErrBadReply. Without a deadline in ctx it gives up after 5 seconds.
func ProbeMaster(ctx context.Context, dial DialFunc, addr string) (MasterInfo, error) {
	b, err := request(ctx, dial, addr, cltomaInfo, matoclInfo)
	if err != nil {
		return MasterInfo{}, err
	}
	info, err := mfsinfo.Decode(b)
	if err != nil {
		return MasterInfo{}, fmt.Errorf("master %s: %w: %w", addr, ErrBadReply, err)
	}
	return MasterInfo{
		Version:     info.MooseFS.String(),
		TotalSpace:  info.TotalSpace,
		AvailSpace:  info.AvailSpace,
		Inodes:      info.Inodes,
		Chunks:      info.Chunks,
		MetaVersion: info.MetaVersion,
	}, nil
}

// Chunkservers lists the chunkservers the master at addr knows, connected or not.
func Chunkservers(ctx context.Context, dial DialFunc, addr string) ([]ChunkserverInfo, error) {
	b, err := request(ctx, dial, addr, cltomaCservList, matoclCservList)
	if err != nil {
		return nil, err
	}
	// 3.0.117 entry (mfsmaster/chunks.c): flags:8 version:24 ip:32 port:16 csid:16 used:64
	// total:64 chunks:32 tdused:64 tdtotal:64 tdchunks:32 errors:32 load:32 gracetime:32
	// labels:32 mfr:8, 69 bytes. 4.59.2 (mfsmaster/csdb.c, the request without a mode byte)
	// adds the ip as mapped for the asking client after ip: 73 bytes. The entry size tells
	// them apart: both divide only lists of 73 or more entries, which the lab never has.
	const size3, size4 = 69, 73
	size, ipmap := size3, 0
	switch {
	case len(b)%size3 == 0 && len(b)%size4 == 0 && len(b) > 0:
		return nil, fmt.Errorf("master %s: chunkserver list of %d bytes: entries of %d (3.0) or %d (4.x) bytes: %w", addr, len(b), size3, size4, ErrBadReply)
	case len(b)%size4 == 0:
		size, ipmap = size4, 4
	case len(b)%size3 != 0:
		return nil, fmt.Errorf("master %s: chunkserver list of %d bytes is not a multiple of %d (3.0) or %d (4.x): %w", addr, len(b), size3, size4, ErrBadReply)
	}
	be := binary.BigEndian
	var out []ChunkserverInfo
	for ; len(b) > 0; b = b[size:] {
		v := be.Uint32(b[0:4])
		var ip [4]byte
		copy(ip[:], b[4:8])
		e := b[ipmap:] // the fields after ip, at their 3.0 offsets
		out = append(out, ChunkserverInfo{
			Addr:       netip.AddrPortFrom(netip.AddrFrom4(ip), be.Uint16(e[8:10])),
			Connected:  v>>24&1 == 0,
			Version:    version(v>>16&0xff, v>>8&0xff, v&0xff),
			UsedSpace:  be.Uint64(e[12:20]),
			TotalSpace: be.Uint64(e[20:28]),
			Chunks:     be.Uint32(e[28:32]),
		})
	}
	return out, nil
}

// Metaloggers lists the metaloggers connected to the master at addr.
func Metaloggers(ctx context.Context, dial DialFunc, addr string) ([]MetaloggerInfo, error) {
	b, err := request(ctx, dial, addr, cltomaMlogList, matoclMlogList)
	if err != nil {
		return nil, err
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("master %s: metalogger list of %d bytes is not a multiple of 8: %w", addr, len(b), ErrBadReply)
	}
	be := binary.BigEndian
	var out []MetaloggerInfo
	for ; len(b) > 0; b = b[8:] {
		v := be.Uint32(b[0:4])
		var ip [4]byte
		copy(ip[:], b[4:8])
		out = append(out, MetaloggerInfo{
			Addr:    netip.AddrFrom4(ip),
			Version: version(v>>16&0xffff, v>>8&0xff, v&0xff),
		})
	}
	return out, nil
}

// version formats a MooseFS version as sent on the wire, where the minor number is doubled
// (configure.ac: VERSMIN = minor*2; an odd value marks a Pro build): 3.0.117 travels as 3.0.234.
func version(major, mid, minor2 uint32) string {
	return fmt.Sprintf("%d.%d.%d", major, mid, minor2/2)
}

// request sends one empty packet of type typ to addr and returns the payload of the first
// answer of type want (skipping NOPs; another type wraps ErrBadReply). Without a deadline in
// ctx it gives up after 5 seconds.
func request(ctx context.Context, dial DialFunc, addr string, typ, want uint32) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	b, err := mfsclient.Request(ctx, mfsclient.DialFunc(dial), addr, typ, nil, want, maxPacket)
	if errors.Is(err, mfsclient.ErrProtocol) {
		return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return b, err
}
