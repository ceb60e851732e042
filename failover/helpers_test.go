package failover

import (
	"net/netip"
	"strings"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
