package lab

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	l, err := New(Config{Name: "cfgt", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.Config()
	if got, want := cfg.Subnet.Bits(), 24; got != want {
		t.Errorf("default subnet bits: got %d, want %d", got, want)
	}
	if got := cfg.Subnet.Addr().As4(); got[0] != 10 || got[1] != 77 {
		t.Errorf("default subnet: got %s, want 10.77.X.0/24", cfg.Subnet)
	}
	if got, want := l.Hosts(), []string{"ma", "mb", "c1", "cl"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("default hosts: got %v, want %v", got, want)
	}
	base := cfg.Subnet.Addr().As4()
	wantMA := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 10})
	if got := l.HostAddr("ma"); got != wantMA {
		t.Errorf("address of ma: got %s, want %s", got, wantMA)
	}
	wantVIP := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 100})
	if got := l.VIP(); got != wantVIP {
		t.Errorf("VIP: got %s, want %s", got, wantVIP)
	}
	if got, want := l.MasterAddr(), wantVIP.String()+":9421"; got != want {
		t.Errorf("master address: got %s, want %s", got, want)
	}
	if got, want := l.VethName("cl"), "cfgt-cl"; got != want {
		t.Errorf("veth name: got %s, want %s", got, want)
	}
	if got, want := l.NetnsPath("cl"), "/run/netns/cfgt-cl"; got != want {
		t.Errorf("netns path: got %s, want %s", got, want)
	}
	// Another name gets its own names; the subnet is derived from the name alone.
	l2, err := New(Config{Name: "cfgt", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Subnet() != l.Subnet() {
		t.Errorf("subnet of the same name differs: %s and %s", l2.Subnet(), l.Subnet())
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	sub := netip.MustParsePrefix("10.77.200.0/24")
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error naming the field
	}{
		{"empty name", Config{Dir: dir}, "Name"},
		{"dash in name", Config{Name: "a-b", Dir: dir}, "Name"},
		{"long name", Config{Name: "abcdefghi", Dir: dir}, "Name"},
		{"no dir", Config{Name: "x"}, "Dir"},
		{"ipv6 subnet", Config{Name: "x", Dir: dir, Subnet: netip.MustParsePrefix("fd00::/64")}, "Subnet"},
		{"vip outside", Config{Name: "x", Dir: dir, Subnet: sub, VIP: netip.MustParseAddr("10.77.201.1")}, "VIP"},
		{"vip broadcast", Config{Name: "x", Dir: dir, Subnet: sub, VIP: netip.MustParseAddr("10.77.200.255")}, "VIP"},
		{"host named br", Config{Name: "x", Dir: dir, Hosts: []HostSpec{{Name: "br"}}}, "Hosts[0].Name"},
		{"host name too long", Config{Name: "abcdefgh", Dir: dir, Hosts: []HostSpec{{Name: "abcdefg"}}}, "Hosts[0].Name"},
		{"interface name of 15 chars", Config{Name: "abcdefgh", Dir: dir, Hosts: []HostSpec{{Name: "ma"}, {Name: "abcdef"}}}, ""},
		{"duplicate host", Config{Name: "x", Dir: dir, Hosts: []HostSpec{{Name: "ma"}, {Name: "ma"}}}, "Hosts[1].Name"},
		{"host on vip", Config{Name: "x", Dir: dir, Subnet: sub, Hosts: []HostSpec{{Name: "ma", Addr: netip.MustParseAddr("10.77.200.100")}}}, "Hosts[0].Addr"},
		{"host outside", Config{Name: "x", Dir: dir, Subnet: sub, Hosts: []HostSpec{{Name: "ma", Addr: netip.MustParseAddr("10.78.0.1")}}}, "Hosts[0].Addr"},
		{"same address", Config{Name: "x", Dir: dir, Subnet: sub, Hosts: []HostSpec{{Name: "ma", Addr: netip.MustParseAddr("10.77.200.5")}, {Name: "mb", Addr: netip.MustParseAddr("10.77.200.5")}}}, "Hosts[1].Addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
