package failsafe

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/sign"
)

func TestConfigRule(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	c := DefaultConfig()
	c.Hold = 2500 * time.Millisecond // 200 ms + 300 ms + 2 s = 2.5 s > 2.495 s
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "FAILSAFE_EVERY + FAILSAFE_TIMEOUT + MASTER_STOP_TIMEOUT") {
		t.Fatalf("hold just too short: %v", err)
	}
	c = DefaultConfig()
	c.Every = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "FAILSAFE_EVERY = 0s") {
		t.Fatalf("zero interval: %v", err)
	}
	c = DefaultConfig()
	c.Hold = 2 * MaxHold
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "FAILSAFE_HOLD") {
		t.Fatalf("hold above MaxHold: %v", err)
	}
}

// The holder's count of a promise must end, in real time, before the member's promise, whatever
// the two clocks' errors within Drift: the holder's clock slow, the member's fast, the member
// receiving the request the instant it was sent.
func TestCoveredEndsBeforeThePromise(t *testing.T) {
	for _, p := range []time.Duration{time.Millisecond, 500 * time.Millisecond, 3 * time.Second, MaxHold} {
		holderReal := float64(Covered(p)) / (1 - Drift) // a slow clock reads less than real time
		memberReal := float64(p) / (1 + Drift)          // a fast clock reads more
		if holderReal > memberReal {
			t.Errorf("hold %s: the holder counts on %.0f ns of real time, the member promises only %.0f", p, holderReal, memberReal)
		}
	}
}

func keys(t *testing.T) (*sign.Signer, *sign.Verifier) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := sign.NewSigner(priv)
	v, err := sign.NewVerifier(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestMessages(t *testing.T) {
	s, v := keys(t)
	h := Hold{Cluster: "c", Holder: "ma", Epoch: 7, Seq: 42, Hold: 3 * time.Second}
	b, err := SealHold(s, h)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenHold(v, b); err != nil || got != h {
		t.Fatalf("hold round trip: %+v, %v", got, err)
	}
	p := Promise{Cluster: "c", Member: "mb", Holder: "ma", Epoch: 7, Seq: 42, Hold: 3 * time.Second}
	pb, err := SealPromise(s, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenPromise(v, pb); err != nil || got != p {
		t.Fatalf("promise round trip: %+v, %v", got, err)
	}

	tampered := bytes.Replace(b, []byte(`"epoch":7`), []byte(`"epoch":8`), 1)
	if _, err := OpenHold(v, tampered); !errors.Is(err, ErrMessage) || !errors.Is(err, sign.ErrBadSignature) {
		t.Fatalf("tampered hold: %v; want ErrMessage and ErrBadSignature", err)
	}
	other, _ := keys(t)
	foreign, _ := SealHold(other, h)
	if _, err := OpenHold(v, foreign); !errors.Is(err, sign.ErrUntrusted) {
		t.Fatalf("hold signed by a foreign key: %v; want ErrUntrusted", err)
	}
	unsigned := bytes.Replace(b, []byte(`"sig":"`), []byte(`"sig":"x`), 1)
	if _, err := OpenHold(v, unsigned); !errors.Is(err, ErrMessage) {
		t.Fatalf("bad signature: %v", err)
	}
	if _, err := OpenPromise(v, b); err == nil || !strings.Contains(err.Error(), "not a promise") {
		t.Fatalf("a hold opened as a promise: %v", err)
	}
	if _, err := OpenHold(v, pb); err == nil || !strings.Contains(err.Error(), "not a hold") {
		t.Fatalf("a promise opened as a hold: %v", err)
	}
	for _, bad := range []Hold{
		{Cluster: "c", Holder: "m\na", Epoch: 7, Hold: time.Second},
		{Cluster: "", Holder: "ma", Epoch: 7, Hold: time.Second},
		{Cluster: "c", Holder: "ma", Epoch: 0, Hold: time.Second},
		{Cluster: "c", Holder: "ma", Epoch: 7, Hold: 2 * MaxHold},
	} {
		if _, err := SealHold(s, bad); !errors.Is(err, ErrMessage) {
			t.Errorf("seal %+v: %v; want ErrMessage", bad, err)
		}
	}
	if _, err := SealPromise(s, Promise{Cluster: "c", Member: "", Holder: "ma", Epoch: 7, Hold: time.Second}); err == nil || !strings.Contains(err.Error(), "member") {
		t.Fatalf("promise without member: %v", err)
	}
}

func TestPromiser(t *testing.T) {
	t0 := time.Now()
	hold := 3 * time.Second
	p := NewPromiser("c", "mb", hold, t0)
	if p.MayTake(t0.Add(hold-time.Millisecond), false) || !p.MayTake(t0.Add(hold), false) {
		t.Fatal("a started node must wait FAILSAFE_HOLD before taking an expired lease")
	}
	if !p.MayTake(t0, true) {
		t.Fatal("a released lease may always be taken")
	}
	h := Hold{Cluster: "c", Holder: "ma", Epoch: 5, Seq: 1, Hold: hold}
	r := t0.Add(10 * time.Second)
	pr, err := p.Answer(h, r, false)
	if err != nil || pr != (Promise{Cluster: "c", Member: "mb", Holder: "ma", Epoch: 5, Seq: 1, Hold: hold}) {
		t.Fatalf("answer: %+v, %v", pr, err)
	}
	if p.MayTake(r.Add(hold-time.Millisecond), false) || !p.MayTake(r.Add(hold), false) || !p.Until().Equal(r.Add(hold)) {
		t.Fatalf("promise until %v; want %v", p.Until(), r.Add(hold))
	}
	// A replayed hold is refused: it would renew the promise for whoever recorded it.
	if _, err := p.Answer(h, r.Add(time.Second), false); !errors.Is(err, ErrReplay) || !p.Until().Equal(r.Add(hold)) {
		t.Fatalf("replayed hold: %v, promise until %v; want ErrReplay and %v", err, p.Until(), r.Add(hold))
	}
	// An earlier-received answer never shortens a promise.
	h.Seq = 2
	if _, err := p.Answer(h, r.Add(-time.Second), false); err != nil || !p.Until().Equal(r.Add(hold)) {
		t.Fatalf("late delivery shortened the promise to %v (%v)", p.Until(), err)
	}
	h.Seq = 3

	for _, tc := range []struct {
		name    string
		h       Hold
		holding bool
		want    error
	}{
		{"own hold", Hold{Cluster: "c", Holder: "mb", Epoch: 5, Seq: 3, Hold: hold}, false, ErrOwnHold},
		{"holding the lease", h, true, ErrHolding},
		{"other cluster", Hold{Cluster: "d", Holder: "ma", Epoch: 5, Seq: 3, Hold: hold}, false, ErrOtherCluster},
		{"longer than FAILSAFE_HOLD", Hold{Cluster: "c", Holder: "ma", Epoch: 5, Seq: 3, Hold: 2 * hold}, false, ErrMessage},
	} {
		if _, err := p.Answer(tc.h, r, tc.holding); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	p.ObserveEpoch(6)
	if _, err := p.Answer(h, r, false); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("hold of epoch 5 after epoch 6 was seen: %v", err)
	}
	if _, err := p.Answer(Hold{Cluster: "c", Holder: "mc", Epoch: 6, Seq: 1, Hold: hold}, r, false); err != nil {
		t.Fatalf("hold of the current epoch: %v", err)
	}
}

func TestCoverage(t *testing.T) {
	cfg := DefaultConfig()
	c := NewCoverage(cfg)
	if _, ok := c.Until(); !ok {
		t.Fatal("without members nobody can take the lease: covered")
	}
	c.SetMembers([]string{"mb", "mc"})
	t0 := time.Now()
	c.Sent("mb", 1, t0)
	c.Sent("mc", 1, t0.Add(time.Millisecond))
	if _, ok := c.Until(); ok || c.MayServe(t0) {
		t.Fatal("covered before any member answered")
	}
	ans := func(member string, seq uint64) error {
		return c.Answered(Promise{Cluster: "c", Member: member, Holder: "ma", Epoch: 5, Seq: seq, Hold: cfg.Hold})
	}
	if err := ans("mb", 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Until(); ok {
		t.Fatal("covered with one member of two")
	}
	if err := ans("mc", 1); err != nil {
		t.Fatal(err)
	}
	until, ok := c.Until()
	if want := t0.Add(Covered(cfg.Hold)); !ok || !until.Equal(want) {
		t.Fatalf("until %v, %v; want mb's %v (the earliest)", until, ok, want)
	}
	last := until.Add(-cfg.StopTimeout)
	if !c.MayServe(last) || c.MayServe(last.Add(time.Nanosecond)) {
		t.Fatalf("MayServe must end StopTimeout (%s) before the coverage", cfg.StopTimeout)
	}
	// Serving on promises stops once a round was missed, well before the coverage ends.
	if su, ok := c.ServeUntil(); !ok || !su.Equal(t0.Add(cfg.Every+2*cfg.Timeout)) || !su.Before(last) {
		t.Fatalf("ServeUntil %v, %v; want mb's request time + Every + 2*Timeout = %v, before %v", su, ok, t0.Add(cfg.Every+2*cfg.Timeout), last)
	}
	long := NewCoverage(Config{Hold: 3 * time.Second, Every: time.Second, Timeout: time.Second, StopTimeout: 2 * time.Second / 10})
	long.SetMembers([]string{"mb"})
	long.Sent("mb", 1, t0)
	if err := long.Answered(Promise{Member: "mb", Seq: 1, Hold: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if su, _ := long.ServeUntil(); !su.Equal(t0.Add(Covered(3*time.Second) - 2*time.Second/10)) {
		t.Fatalf("ServeUntil %v; want the coverage minus StopTimeout when that comes first", su)
	}

	for _, tc := range []struct {
		name string
		p    Promise
		want string
	}{
		{"not a member", Promise{Member: "zz", Seq: 1, Hold: cfg.Hold}, "not a member"},
		{"no such request", Promise{Member: "mb", Seq: 9, Hold: cfg.Hold}, "no such request"},
		{"other hold", Promise{Member: "mb", Seq: 1, Hold: time.Second}, "asked"},
	} {
		if err := c.Answered(tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}

	// A new member starts uncovered; a dropped one no longer counts.
	c.SetMembers([]string{"mb", "md"})
	if _, ok := c.Until(); ok {
		t.Fatal("a new member must answer before it covers")
	}
	c.SetMembers([]string{"mb"})
	if u, ok := c.Until(); !ok || !u.Equal(t0.Add(Covered(cfg.Hold))) {
		t.Fatalf("after dropping: %v, %v", u, ok)
	}
	// Old requests are forgotten beyond keepSent rounds.
	for s := uint64(2); s < 2+keepSent+10; s++ {
		c.Sent("mb", s, t0.Add(time.Duration(s)*time.Millisecond))
	}
	if err := ans("mb", 2); err == nil {
		t.Fatal("an answer to a forgotten request counted")
	}
	if err := ans("mb", 2+keepSent+9); err != nil {
		t.Fatal(err)
	}
}

// The double fault of the design: NATS elects a leader (no renewal) while ma, the holder, is cut
// off from mb. ma must have finished fencing before mb's promise lets it take the lease.
func TestDoubleFault(t *testing.T) {
	cfg := DefaultConfig()
	s, v := keys(t)
	t0 := time.Now()
	cov := NewCoverage(cfg)
	cov.SetMembers([]string{"mb"})
	mb := NewPromiser("c", "mb", cfg.Hold, t0)

	// Rounds every cfg.Every while the link works; each request takes 40 ms to arrive.
	var lastOK time.Time
	for i := uint64(1); i <= 20; i++ {
		sent := t0.Add(time.Duration(i) * cfg.Every)
		cov.Sent("mb", i, sent)
		wire, err := SealHold(s, Hold{Cluster: "c", Holder: "ma", Epoch: 5, Seq: i, Hold: cfg.Hold})
		if err != nil {
			t.Fatal(err)
		}
		h, err := OpenHold(v, wire)
		if err != nil {
			t.Fatal(err)
		}
		p, err := mb.Answer(h, sent.Add(40*time.Millisecond), false)
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := SealPromise(s, p)
		po, err := OpenPromise(v, pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := cov.Answered(po); err != nil {
			t.Fatal(err)
		}
		if !cov.MayServe(sent.Add(cfg.Every + cfg.Timeout)) {
			t.Fatalf("round %d: the holder must stay covered until the next answer", i)
		}
		lastOK = sent
	}
	// The link is cut: no more answers. The holder's last moment to start fencing:
	until, _ := cov.Until()
	fenceStart := until.Add(-cfg.StopTimeout)
	if !cov.MayServe(fenceStart) || cov.MayServe(fenceStart.Add(time.Millisecond)) {
		t.Fatal("the holder must start fencing StopTimeout before its coverage ends")
	}
	fenced := fenceStart.Add(cfg.StopTimeout) // the fence ends at the latest here
	firstTake := mb.Until()
	if mb.MayTake(firstTake.Add(-time.Millisecond), false) {
		t.Fatal("mb may take the lease before its promise ended")
	}
	if !fenced.Before(firstTake) {
		t.Fatalf("ma fenced at %v, after mb may take at %v", fenced.Sub(t0), firstTake.Sub(t0))
	}
	t.Logf("last answer for a request sent at +%s; ma fenced by +%s; mb may take from +%s",
		lastOK.Sub(t0), fenced.Sub(t0), firstTake.Sub(t0))
}
