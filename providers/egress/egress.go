// Package egress guards the connections Onceflow makes to destinations that
// callers supply (webhook URLs, Slack incoming-webhook URLs): a caller must
// not be able to make a worker reach what only the worker can reach.
//
// The Guard checks the address actually dialled, after name resolution,
// right before the connection is made (net.Dialer's Control hook). A name
// is never checked in place of its address, so a name that resolves
// inward, or answers a public address to one lookup and an internal one to
// the next (DNS rebinding), is refused on every dial that would go inward.
//
// Refused, unless an operator allows the network (ONCEFLOW_EGRESS_ALLOW):
//
//	0.0.0.0/8           unspecified ("this network"; 0.0.0.0 reaches the host itself)
//	127.0.0.0/8         loopback
//	10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16   private (RFC 1918)
//	100.64.0.0/10       shared (RFC 6598, carrier-grade NAT)
//	169.254.0.0/16      link-local, 169.254.169.254 (cloud metadata) included
//	224.0.0.0/4         multicast
//	240.0.0.0/4         reserved, 255.255.255.255 (broadcast) included
//	::/128, ::1/128     unspecified, loopback
//	::/96               IPv4-compatible (deprecated; never a public destination)
//	fc00::/7            unique-local
//	fe80::/10           link-local
//	fec0::/10           site-local (deprecated)
//	ff00::/8            multicast
//	64:ff9b:1::/48      local-use NAT64 (RFC 8215; its translation is the local network's)
//	2001::/32           Teredo (tunnels to an obfuscated IPv4 address that cannot be checked)
//
// IPv6 forms that carry an IPv4 address are judged by that address:
// IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 (RFC 6052; the translator
// connects to the embedded address) and 6to4 2002::/16 (the relay delivers
// to the embedded address's network). 64:ff9b::a00:1 is refused as 10.0.0.1
// is; 64:ff9b::808:808 passes as 8.8.8.8 does.
//
// Host names written as numbers in the forms that inet_aton accepts (127.1,
// 0x7f.0.0.1, 2130706433, 0177.0.0.1) are read as the address they spell
// before the dial, so that they are refused, or dialled, as that address
// whatever the resolver would make of them.
package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// EnvAllow names the environment variable that lists the networks an
// operator allows: comma-separated CIDRs such as 10.20.0.0/16,fd00:1::/64.
const EnvAllow = "ONCEFLOW_EGRESS_ALLOW"

// Guard decides which addresses may be dialled for destinations that
// callers supply. The zero Guard refuses every network in the package
// comment's table.
type Guard struct {
	// Allow lists networks that may be dialled although a rule refuses
	// them. An IPv4 network also allows the IPv6 forms that embed its
	// addresses.
	Allow []netip.Prefix
}

// Loopback returns the loopback networks, 127.0.0.0/8 and ::1/128: what
// `onceflow dev` and tests allow so that a receiver on this host works.
func Loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// ParseAllow reads a comma-separated list of networks in CIDR notation; a
// bare address stands for itself alone. Blank entries are skipped.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or fd00::/8", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Rule is one refused network.
type Rule struct {
	Network netip.Prefix
	// What the destination is, in a sentence: "a loopback address".
	What string
}

// RefusedError is a dial the Guard refused. Nothing was sent.
type RefusedError struct {
	// Addr is the address that was about to be dialled.
	Addr netip.Addr
	// Embedded is the IPv4 address that an IPv6 Addr carries and was
	// judged by (IPv4-mapped, NAT64, 6to4); invalid otherwise.
	Embedded netip.Addr
	// Form names Addr's IPv6 form when Embedded is set: "an IPv4-mapped
	// address".
	Form string
	// Rule is the rule that refused it.
	Rule Rule
}

func (e *RefusedError) Error() string {
	what := e.Rule.What
	if e.Embedded.IsValid() {
		what = fmt.Sprintf("%s of %s, %s", e.Form, e.Embedded, what)
	}
	return fmt.Sprintf("destination %s is %s; refused by the egress guard (allow it with %s=%s)", e.Addr, what, EnvAllow, e.Rule.Network)
}

var (
	rules4 = []Rule{
		rule("0.0.0.0/8", "an unspecified address"),
		rule("127.0.0.0/8", "a loopback address"),
		rule("10.0.0.0/8", "a private address (RFC 1918)"),
		rule("172.16.0.0/12", "a private address (RFC 1918)"),
		rule("192.168.0.0/16", "a private address (RFC 1918)"),
		rule("100.64.0.0/10", "a shared address (RFC 6598)"),
		rule("169.254.169.254/32", "the cloud metadata address (link-local)"),
		rule("169.254.0.0/16", "a link-local address"),
		rule("224.0.0.0/4", "a multicast address"),
		rule("240.0.0.0/4", "a reserved address"),
	}
	rules6 = []Rule{
		rule("::/128", "an unspecified address"),
		rule("::1/128", "a loopback address"),
		rule("::/96", "an IPv4-compatible address (deprecated)"),
		rule("fc00::/7", "a unique-local address"),
		rule("fe80::/10", "a link-local address"),
		rule("fec0::/10", "a site-local address (deprecated)"),
		rule("ff00::/8", "a multicast address"),
		rule("64:ff9b:1::/48", "a local-use NAT64 address (RFC 8215)"),
		rule("2001::/32", "a Teredo address"),
	}
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func rule(network, what string) Rule {
	return Rule{Network: netip.MustParsePrefix(network), What: what}
}

// Check returns nil when addr may be dialled, and a *RefusedError naming
// the rule when it may not.
func (g Guard) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	if g.allowed(addr) {
		return nil
	}
	if addr.Is4In6() {
		return g.embedded(addr, addr.Unmap(), "an IPv4-mapped address")
	}
	if addr.Is4() {
		return refuse(addr, rules4)
	}
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return g.embedded(addr, netip.AddrFrom4([4]byte(b[12:16])), "a NAT64 address")
	case sixToFour.Contains(addr):
		return g.embedded(addr, netip.AddrFrom4([4]byte(b[2:6])), "a 6to4 address")
	}
	return refuse(addr, rules6)
}

func (g Guard) allowed(addr netip.Addr) bool {
	for _, p := range g.Allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// embedded judges addr, an IPv6 form of v4, by v4.
func (g Guard) embedded(addr, v4 netip.Addr, form string) error {
	err := g.Check(v4)
	if re, ok := err.(*RefusedError); ok {
		re.Addr, re.Embedded, re.Form = addr, v4, form
	}
	return err
}

func refuse(addr netip.Addr, rules []Rule) error {
	for _, r := range rules {
		if r.Network.Contains(addr) {
			return &RefusedError{Addr: addr, Rule: r}
		}
	}
	return nil
}

// Control is a net.Dialer Control function: it refuses a connection to an
// address that Check refuses, after the name was resolved and before the
// connection is made.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address that cannot be read cannot be judged.
		return fmt.Errorf("egress guard: cannot read the dialled address %q: %w", address, err)
	}
	return g.Check(ap.Addr())
}

// DialContext returns a dial function for an http.Transport: d's, with
// every address it connects to checked by Control (after any Control d
// already has), and a host written as inet_aton numbers dialled as the
// address it spells.
func (g Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	guarded := *d
	// Go calls ControlContext instead of Control when both are set.
	guarded.Control = nil
	guarded.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		var err error
		switch {
		case d.ControlContext != nil:
			err = d.ControlContext(ctx, network, address, c)
		case d.Control != nil:
			err = d.Control(network, address, c)
		}
		if err != nil {
			return err
		}
		return g.Control(network, address, c)
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(address); err == nil {
			if a, ok := ParseNumericIPv4(host); ok {
				address = net.JoinHostPort(a.String(), port)
			}
		}
		return guarded.DialContext(ctx, network, address)
	}
}

// ParseNumericIPv4 reads host as inet_aton does: one to four parts
// separated by dots, each decimal, octal (a leading 0) or hexadecimal (a
// leading 0x), the last filling the bytes the others leave. It reports
// false for anything else, a host name included.
func ParseNumericIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var n [4]uint64
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		n[i] = v
	}
	last := len(parts) - 1
	var out uint64
	for i := range last {
		if n[i] > 0xff {
			return netip.Addr{}, false
		}
		out |= n[i] << (8 * (3 - i))
	}
	if n[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	out |= n[last]
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}
