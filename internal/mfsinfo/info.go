// Package mfsinfo decodes a MooseFS master's answer to CLTOMA_INFO (the request `mfscli -SIN`
// and mfsha's health probes send on the client port, without registering).
//
// The answer's layout depends on the MooseFS version (matoclserv_info in
// mfsmaster/matoclserv.c): 3.0.x sends 149 bytes with the metadata version at offset 121;
// 4.5x (4.56.5 to 4.59.2 at least) sends 205 bytes with it at 125, after two more chunk
// counters. Both start with the MooseFS version and put the same marker just before the
// metadata version: four 0xFF bytes and eight zero bytes. Decode knows these layouts by
// their length and checks the marker; any other answer is an error, never a version read
// from the wrong place.
package mfsinfo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mfsha/mfsha/internal/moosefs"
)

// ErrUnknownLayout is wrapped by Decode when the answer is not one of the known layouts.
var ErrUnknownLayout = errors.New("CLTOMA_INFO answer of an unknown layout")

// Info is what mfsha uses of the answer.
type Info struct {
	MooseFS     moosefs.Version // of the master's binaries (bytes 0-3)
	MetaVersion uint64          // the next change id, as in metadata.mfs; never 0 from Decode
	TotalSpace  uint64          // bytes, as reported by the chunkservers
	AvailSpace  uint64
	Inodes      uint32
	Chunks      uint32
}

// metaVersionAt maps the known answer lengths to the offset of the metadata version.
var metaVersionAt = map[int]int{
	149: 121, // 3.0.x
	205: 125, // 4.5x: + ec8chunks, ec4chunks before it; + metaid and more after it
}

// marker precedes the metadata version in every known layout: four 0xFF bytes, then two u32
// zeros (put8bit(0xFF) x4, put32bit(0) x2 in matoclserv_info).
var marker = []byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0}

// Decode decodes a MATOCL_INFO payload.
func Decode(p []byte) (Info, error) {
	at, ok := metaVersionAt[len(p)]
	if !ok {
		return Info{}, fmt.Errorf("%w: %d bytes from MooseFS %s (known: 149 bytes from 3.0.x, 205 from 4.5x)", ErrUnknownLayout, len(p), version(p))
	}
	if !bytes.Equal(p[at-len(marker):at], marker) {
		return Info{}, fmt.Errorf("%w: %d bytes from MooseFS %s without the marker before the metadata version at byte %d", ErrUnknownLayout, len(p), version(p), at)
	}
	be := binary.BigEndian
	info := Info{
		MooseFS:     moosefs.FromWire([4]byte(p[0:4])),
		MetaVersion: be.Uint64(p[at : at+8]),
		TotalSpace:  be.Uint64(p[28:36]),
		AvailSpace:  be.Uint64(p[36:44]),
		Inodes:      be.Uint32(p[76:80]),
		Chunks:      be.Uint32(p[88:92]),
	}
	if info.MetaVersion == 0 {
		return Info{}, fmt.Errorf("%w: MooseFS %s reports metadata version 0 (a serving master has 1 or more)", ErrUnknownLayout, info.MooseFS)
	}
	return info, nil
}

// version is the MooseFS version of a payload of at least 4 bytes, for messages.
func version(p []byte) string {
	if len(p) < 4 {
		return "(unknown)"
	}
	return moosefs.FromWire([4]byte(p[0:4])).String()
}
