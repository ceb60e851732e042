package stream

import (
	"errors"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/signtest"
)

func TestBatchSignatureCoversEveryHeader(t *testing.T) {
	k := signtest.New(t)
	info := BatchInfo{Timeline: 2, ParentTimeline: 1, BridgedFrom: 5, FirstVersion: 10, LastVersion: 12, FirstTime: 1700000000,
		LastTime: 1700000002, Lines: 3, LastLineHash: 0xfeed, Sum: 0xdeadbeef, MetaID: 42, Epoch: 7, Source: "ma", Writer: "mfsha 0.1.0"}
	payload := []byte("compressed bytes")
	subj := Subject("c", 2)
	h := SignedHeader(k.Signer, subj, info, payload)
	if _, err := VerifyBatch(k.Verifier, 1, subj, h, payload); err != nil {
		t.Fatalf("as signed: %v", err)
	}
	// The same values written differently (leading zeros, upper-case hex) still verify: the
	// signature covers values, not spelling or order.
	h2 := SignedHeader(k.Signer, subj, info, payload)
	h2.Set(HdrFirstVersion, "010")
	h2.Set(HdrSum, "DEADBEEF")
	if _, err := VerifyBatch(k.Verifier, 1, subj, h2, payload); err != nil {
		t.Fatalf("respelled: %v", err)
	}
	for _, tc := range []struct {
		name    string
		subject string
		key     string
		value   string
		payload string
	}{
		{name: "subject", subject: Subject("c", 3)},
		{name: "payload", payload: "compressed bytez"},
		{name: HdrTimeline, key: HdrTimeline, value: "3"},
		{name: HdrTimelineFrom, key: HdrTimelineFrom, value: "0"},
		{name: HdrBridgedFrom, key: HdrBridgedFrom, value: "4"},
		{name: "version range, lines kept consistent", key: HdrLastVersion, value: "13"},
		{name: HdrFirstTime, key: HdrFirstTime, value: "1700000001"},
		{name: HdrLastTime, key: HdrLastTime, value: "1800000002"},
		{name: HdrLastLineHash, key: HdrLastLineHash, value: "beef"},
		{name: HdrSum, key: HdrSum, value: "deadbeee"},
		{name: HdrMetaID, key: HdrMetaID, value: "43"},
		{name: HdrEpoch, key: HdrEpoch, value: "8"},
		{name: HdrSource, key: HdrSource, value: "mb"},
		{name: HdrWriter, key: HdrWriter, value: "mfsha 9.9.9"},
	} {
		h := SignedHeader(k.Signer, subj, info, payload)
		s, p := subj, payload
		if tc.subject != "" {
			s = tc.subject
		}
		if tc.payload != "" {
			p = []byte(tc.payload)
		}
		if tc.key != "" {
			h.Set(tc.key, tc.value)
		}
		if tc.key == HdrLastVersion {
			h.Set(HdrLines, "4")
		}
		_, err := VerifyBatch(k.Verifier, 9, s, h, p)
		if !errors.Is(err, sign.ErrBadSignature) || !strings.Contains(err.Error(), "stream message 9 ("+s) {
			t.Errorf("%s changed: %v; want ErrBadSignature naming message 9 and its subject", tc.name, err)
		}
	}
	unsigned := info.Header()
	if _, err := VerifyBatch(k.Verifier, 3, subj, unsigned, payload); !errors.Is(err, sign.ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	foreign := signtest.New(t)
	if _, err := VerifyBatch(k.Verifier, 3, subj, SignedHeader(foreign.Signer, subj, info, payload), payload); !errors.Is(err, sign.ErrUntrusted) ||
		!strings.Contains(err.Error(), foreign.Signer.KeyID()) {
		t.Errorf("foreign: %v", err)
	}
}

func TestBatchSignedIsCanonical(t *testing.T) {
	// A quoted source cannot forge a field line.
	a := BatchSigned("s", BatchInfo{Source: "x\nepoch=9"}, nil)
	if strings.Count(string(a), "\n") != 18 || !strings.Contains(string(a), `source="x\nepoch=9"`) {
		t.Fatalf("encoding:\n%s", a)
	}
	if !strings.HasPrefix(string(a), "mfsha-batch-v1\nsubject=\"s\"\ntimeline=0\n") {
		t.Fatalf("encoding starts %q", a[:40])
	}
}
