package changelog

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// everyOp has one line per operation and form that MooseFS 3.0.117 or 4.59.2 writes (the
// changelog() calls of their mfsmaster/*.c), plus the older forms their restore.c still
// reads. Each must pass Check, parse, and format back byte for byte.
var everyOp = []string{
	// Both versions.
	"1: 1700000000|ACCESS(5)",
	"1: 1700000000|ACQUIRE(1,5)",
	"1: 1700000000|AMTIME(5,1700000000,1700000001,1700000002)",
	"1: 1700000000|APPEND(5,6,0,4294967295)",
	"1: 1700000000|ARCHCHG(5,0,1):3,0,1",
	"1: 1700000000|ATTR(5,420,1000,1000,1700000000,1700000000,0,0)",
	"1: 1700000000|CHUNKADD(12,1,1700000060)",
	"1: 1700000000|CHUNKDEL(12,1)",
	"1: 1700000000|CREATE(1,f%2C1%28%25%29%C3%A9%09tab.txt,1,420,18,0,0,0):3",
	"1: 1700000000|CSDBOP(0,167772161,9422,1)",
	"1: 1700000000|CSDBOP(5,167772161,9422,3600)",
	"1: 1700000000|EMPTYSUSTAINED(7):0,0",
	"1: 1700000000|FLOCK(5,1,18446744073709551615,W)",
	"1: 1700000000|FLOCK(5,1,7,U)",
	"1: 1700000000|FREEINODES(86400):0,0,0",
	"1: 1700000000|LENGTH(5,100000,1)",
	"1: 1700000000|LENGTH(5,0,1)",
	"1: 1700000000|LINK(5,1,hard.txt)",
	"1: 1700000000|NEXTCHUNKID(100)",
	"1: 1700000000|POSIXLOCK(5,1,7,R,10,15,1234)",
	"1: 1700000000|PURGE(5)",
	"1: 1700000000|QUOTA(5,0,3,0,100,200,0,0,0,0,1000000,2000000,3600)",
	"1: 1700000000|QUOTA(5,0,0,0,0,0,0,0,0,0,0,0,0)",
	"1: 1700000000|RELEASE(1,5)",
	"1: 1700000000|RENUMERATEEDGES():1000",
	"1: 1700000000|REPAIR(5,0):2",
	"1: 1700000000|ROLLBACK(5,0,12,13)",
	"1: 1700000000|SCDEL(sc4):4",
	"1: 1700000000|SCDUP(sc 3,sc4):3,4",
	"1: 1700000000|SCREN(sc2,sc 3):3",
	"1: 1700000000|SESDEL(3)",
	"1: 1700000000|SESDISCONNECTED(3)",
	"1: 1700000000|SETACL(5,420,1,1,6,4,4,4,1,0,%00%00%03%E8%00%04)",
	"1: 1700000000|SETEATTR(5,0,1,0):1,0,0",
	"1: 1700000000|SETFILECHUNK(5,0,0)",
	"1: 1700000000|SETMETAID(7712007351827270746)",
	"1: 1700000000|SETPATH(5,/dir 1/%C3%A9)",
	"1: 1700000000|SETSCLASS(5,0,2,10,0):1,0,0",
	"1: 1700000000|SETTRASHTIME(5,0,3600,2):3,0,0",
	"1: 1700000000|SETVERSION(12,2)",
	"1: 1700000000|SETXATTR(2,user.comment,val%2Cue %28%25%29 %00%01%FF,0)",
	"1: 1700000000|SNAPSHOT(2,1,snap dir,0,72,0,[0,10,20],18):18,0,0,0,0,1",
	"1: 1700000000|SYMLINK(1,sym.txt,../target%2Cwith%25odd%28chars%29%C3%A9,0,0):9",
	"1: 1700000000|TRUNC(5,0):14",
	"1: 1700000000|UNDEL(5)",
	"1: 1700000000|UNLINK(1,hard.txt):5",
	"1: 1700000000|UNLOCK(12)",
	"1: 1700000000|WRITE(5,0,1,1):12",
	// 3.0.117 forms.
	"1: 1700000000|EMPTYTRASH(7):0,0,0",
	"1: 1700000000|MOVE(1,dir1,1,dir 2%28renamed%29):2",
	"1: 1700000000|SCSET(sc%2C1%28x%29,1,W1,K1,A0,0,0,0,1,0,0,0,2,0,0,0):10",
	"1: 1700000000|SCSET(sc2,1,W0,K0,A0,0,0,0,-):11",
	"1: 1700000000|SESADD(#6597591522451432279,1,2,0022,0,0,999,999,1,9,0,4294967295,0x00000000,167772161,/tmp/mnt):1",
	"1: 1700000000|SESCHANGED(1,#6597591522451432279,1,2,0022,0,0,999,999,1,9,0,4294967295,0x00000000,167772161,/tmp/mnt)",
	"1: 1700000000|ARCHCHG(5,0,1):3,0,0",
	"1: 1700000000|SETGOAL(5,0,3,0):1,0,0",
	// 4.59.2 forms and operations.
	"1: 1700000000|ADDATTR(5,1,%01%02)",
	"1: 1700000000|AUTOARCH(5,1700000000,0):1,0",
	"1: 1700000000|CHUNKFLAGSCLR(12)",
	"1: 1700000000|EMPTYTRASH(7):0,0,0,0",
	"1: 1700000000|IDLE()",
	"1: 1700000000|MOVE(1,dir1,1,dir 2%28renamed%29,0):2",
	"1: 1700000000|PATADD(*.tmp,0,0,1,0,2,0,0,0)",
	"1: 1700000000|PATDEL(*.tmp,0,0)",
	"1: 1700000000|SCECVERSION(1)",
	"1: 1700000000|SCSET(sc_two,1,1,my class%2C %28desc%29,0,0,C(0:0:0),K(2:0:255),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,FF,FF):10",
	"1: 1700000000|SCSET(s,0,1,,0,0,C(0:0:0),K(0:0:0),A(0:0:0:0),T(0:0:0:0),0,(1:24:0),0,0,-):12",
	"1: 1700000000|SESADD(#6597591522451432279,1,2,0022,0,0,999,999,0xFFFF,0,4294967295,0x00000000,167772161,/mnt/mfs):1",
	"1: 1700000000|SESCHANGED(1,#6597591522451432279,1,2,0022,0,0,999,999,0x0006,0,4294967295,0x00000000,167772161,/mnt/mfs)",
	"1: 1700000000|SESCONNECTED(1)",
	"1: 1700000000|TRASH_RECOVER(5,1,dir/a%2Cb,18,0,0,0):(dir/a%2Cb)",
	"1: 1700000000|TRASH_REMOVE(5)",
	// Older forms restore.c still reads.
	"1: 1700000000|AQUIRE(1,5)",
	"1: 1700000000|APPEND(5,6)",
	"1: 1700000000|ATTR(5,420,1000,1000,1700000000,1700000000)",
	"1: 1700000000|AUTOARCH(5,1700000000):1",
	"1: 1700000000|CREATE(1,old,f,420,0,0,0):3",
	"1: 1700000000|CSADD(167772161,9422)",
	"1: 1700000000|CSDEL(167772161,9422)",
	"1: 1700000000|CUSTOMER():1",
	"1: 1700000000|EMPTYRESERVED():0",
	"1: 1700000000|EMPTYTRASH():0,0",
	"1: 1700000000|FREEINODES():0",
	"1: 1700000000|INCVERSION(12)",
	"1: 1700000000|LENGTH(5,100)",
	"1: 1700000000|SCECON()",
	"1: 1700000000|SCRAIDON()",
	"1: 1700000000|SCSET(s,0,C(1:0),K(1:0),A(0:0:0),T(0:0:0),1,24,0,0,0102,0102):3",
	"1: 1700000000|SESADD(1,2,1000,0,999,999,1,9,0,4294967295,167772161,info):1",
	"1: 1700000000|SESSION():1",
	"1: 1700000000|SNAPSHOT(2,1,s,0,0,0,0,18)",
	"1: 1700000000|SNAPSHOT(2,1,s,0,0,0,2,%00%00%00%00%0A%00%00%00,18):1,0,0,0,0,1",
	"1: 1700000000|WRITE(5,0):12",
}

func TestCheckEveryOp(t *testing.T) {
	seen := map[string]bool{}
	for _, in := range everyOp {
		if err := Check([]byte(in)); err != nil {
			t.Errorf("Check(%q): %v", in, err)
			continue
		}
		l, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		seen[l.Op] = true
		if got := l.String(); got != in {
			t.Errorf("round trip:\n got %s\nwant %s", got, in)
		}
		if l.RawArgs != "" {
			t.Errorf("%s: RawArgs %q, want arguments that MooseFS's escaping reproduces", in, l.RawArgs)
		}
		hand := Line{Version: l.Version, Time: l.Time, Op: l.Op, Args: l.Args, HasResult: l.HasResult, Result: l.Result}
		if got := hand.String(); got != in {
			t.Errorf("formatted from its Args:\n got %s\nwant %s", got, in)
		}
	}
	for _, op := range opNames {
		if !seen[op] {
			t.Errorf("operation %s has no line in everyOp", op)
		}
	}
}

// TestCheckAgreesWithParse: one grammar, so Check and Parse accept and refuse the same lines
// with the same error.
func TestCheckAgreesWithParse(t *testing.T) {
	ins := append([]string{}, everyOp...)
	for _, l := range realLines(t) {
		ins = append(ins, string(l))
	}
	for _, in := range ins {
		for cut := 0; cut <= len(in); cut++ {
			b := []byte(in[:cut])
			cerr := Check(b)
			_, perr := Parse(b)
			if (cerr == nil) != (perr == nil) || cerr != nil && cerr.Error() != perr.Error() {
				t.Fatalf("%q: Check %v, Parse %v", b, cerr, perr)
			}
			if cerr != nil && !errors.Is(cerr, ErrSyntax) {
				t.Fatalf("Check(%q) = %v, want a *SyntaxError", b, cerr)
			}
		}
	}
}

// TestCheckRefusesDamage: the damage seen in the field (a NUL byte, a line cut and glued to a
// later one) and each byte of a real line replaced by a NUL.
func TestCheckRefusesDamage(t *testing.T) {
	for _, in := range []string{
		"34702: 1700000000|CREATE(1,f34,1,420,18,0,0,0):3460001: 1700000100|CREATE(1,f60,1,420,18,0,0,0):61",
		"34702: 1700000000|CREATE(1,f3460001: 1700000100|CREATE(1,f60,1,420,18,0,0,0):61",
		"34702: 1700000000|UNLINK(1,f34)60001: 1700000100|IDLE()",
		"34702: 1700000000|WRITE(5,0,1,1):1260001: 1700000100|IDLE()",
		"34702: 1700000000|SETXATTR(2,user.a,\x00\x00\x00,0)",
	} {
		if err := Check([]byte(in)); err == nil {
			t.Errorf("Check(%q) accepted a damaged line", in)
		}
	}
	for _, raw := range realLines(t) {
		for i := range raw {
			b := bytes.Clone(raw)
			b[i] = 0
			if err := Check(b); err == nil {
				t.Fatalf("Check(%q) accepted a NUL at byte %d", b, i)
			}
		}
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	lines := append(realLines(t), []byte(everyOp[len(everyOp)-30]), []byte(plainLine), []byte(escapedLine))
	allocs := testing.AllocsPerRun(20, func() {
		for _, l := range lines {
			if err := Check(l); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Check allocates %v times per run of %d lines, want 0", allocs, len(lines))
	}
}

// TestScsetNestedArgs: the 4.x SCSET's storage modes are single arguments kept raw.
func TestScsetNestedArgs(t *testing.T) {
	l, err := Parse([]byte("1: 1700000000|SCSET(sc_two,1,1,my class%2C %28desc%29,0,0,C(0:0:0),K(2:0:255),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,FF,FF):10"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sc_two", "1", "1", "my class, (desc)", "0", "0", "C(0:0:0)", "K(2:0:255)", "A(0:0:0:0)", "T(0:0:0:0)", "1", "(1:24:0)", "0", "0", "FF", "FF"}
	if !reflect.DeepEqual(l.Args, want) || l.Result != "10" {
		t.Fatalf("Args %q result %q, want %q and 10", l.Args, l.Result, want)
	}
}

func BenchmarkCheck(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"plain", plainLine}, {"escaped", escapedLine},
		{"scset4", "1: 1700000000|SCSET(sc_two,1,1,my class%2C %28desc%29,0,0,C(0:0:0),K(2:0:255),A(0:0:0:0),T(0:0:0:0),1,(1:24:0),0,0,FF,FF):10"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Check(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
