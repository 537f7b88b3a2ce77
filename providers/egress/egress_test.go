package egress_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers/egress"
)

func TestCheck(t *testing.T) {
	refused := []struct{ addr, want string }{
		{"127.0.0.1", "destination 127.0.0.1 is a loopback address; refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8)"},
		{"127.255.0.9", "is a loopback address"},
		{"::1", "destination ::1 is a loopback address; refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=::1/128)"},
		{"::ffff:127.0.0.1", "destination ::ffff:127.0.0.1 is an IPv4-mapped address of 127.0.0.1, a loopback address; refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8)"},
		{"0.0.0.0", "is an unspecified address"},
		{"0.1.2.3", "is an unspecified address"},
		{"::", "is an unspecified address"},
		{"10.0.0.1", "is a private address (RFC 1918); refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=10.0.0.0/8)"},
		{"172.16.0.1", "(allow it with ONCEFLOW_EGRESS_ALLOW=172.16.0.0/12)"},
		{"172.31.255.255", "is a private address (RFC 1918)"},
		{"192.168.1.1", "(allow it with ONCEFLOW_EGRESS_ALLOW=192.168.0.0/16)"},
		{"100.64.0.1", "is a shared address (RFC 6598)"},
		{"169.254.169.254", "destination 169.254.169.254 is the cloud metadata address (link-local); refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=169.254.169.254/32)"},
		{"::ffff:169.254.169.254", "an IPv4-mapped address of 169.254.169.254, the cloud metadata address"},
		{"169.254.0.1", "is a link-local address"},
		{"224.0.0.1", "is a multicast address"},
		{"239.255.255.250", "is a multicast address"},
		{"240.0.0.1", "is a reserved address"},
		{"255.255.255.255", "is a reserved address"},
		{"::7f00:1", "is an IPv4-compatible address (deprecated)"},
		{"fd00::1", "is a unique-local address"},
		{"fc00::1", "is a unique-local address"},
		{"fe80::1", "is a link-local address"},
		{"fe80::1%eth0", "destination fe80::1 is a link-local address"},
		{"fec0::1", "is a site-local address (deprecated)"},
		{"ff02::1", "is a multicast address"},
		{"64:ff9b::a00:1", "destination 64:ff9b::a00:1 is a NAT64 address of 10.0.0.1, a private address (RFC 1918); refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=10.0.0.0/8)"},
		{"64:ff9b::7f00:1", "is a NAT64 address of 127.0.0.1, a loopback address"},
		{"64:ff9b::a9fe:a9fe", "is a NAT64 address of 169.254.169.254, the cloud metadata address"},
		{"64:ff9b:1::a00:1", "is a local-use NAT64 address (RFC 8215)"},
		{"2002:a9fe:a9fe::1", "is a 6to4 address of 169.254.169.254, the cloud metadata address"},
		{"2002:c0a8:101::", "is a 6to4 address of 192.168.1.1, a private address"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "is a Teredo address"},
	}
	for _, c := range refused {
		err := egress.Guard{}.Check(netip.MustParseAddr(c.addr))
		var re *egress.RefusedError
		if assert.True(t, errors.As(err, &re), "%s: want refused, got %v", c.addr, err) {
			assert.Contains(t, err.Error(), c.want, c.addr)
		}
	}
	for _, a := range []string{
		"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "169.253.255.255", "223.255.255.255", "192.0.2.1",
		"2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	} {
		assert.NoError(t, egress.Guard{}.Check(netip.MustParseAddr(a)), a)
	}
}

func TestAllow(t *testing.T) {
	allow, err := egress.ParseAllow(" 10.20.0.0/16, 127.0.0.1 ,,fd00:1::/64")
	require.NoError(t, err)
	g := egress.Guard{Allow: allow}
	for _, a := range []string{"10.20.3.4", "127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a14:304", "2002:a14:304::1", "fd00:1::5"} {
		assert.NoError(t, g.Check(netip.MustParseAddr(a)), a)
	}
	for _, a := range []string{"10.21.0.1", "127.0.0.2", "::1", "fd00:2::5"} {
		assert.Error(t, g.Check(netip.MustParseAddr(a)), a)
	}
	assert.NoError(t, egress.Guard{Allow: egress.Loopback()}.Check(netip.MustParseAddr("::1")))

	for _, bad := range []string{"10.0.0.0/33", "localhost", "10.0.0.0/8;fd00::/8", "fe80::1%eth0"} {
		_, err := egress.ParseAllow(bad)
		assert.ErrorContains(t, err, "is not a network such as 10.0.0.0/8", bad)
	}
	none, err := egress.ParseAllow("")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestParseNumericIPv4(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "127.1": "127.0.0.1", "127.0.1": "127.0.0.1", "0x7f.0.0.1": "127.0.0.1",
		"0177.0.0.1": "127.0.0.1", "0x7f000001": "127.0.0.1", "2130706433": "127.0.0.1", "017700000001": "127.0.0.1",
		"0": "0.0.0.0", "169.254.43518": "169.254.169.254", "0xA9FEA9FE": "169.254.169.254",
	} {
		got, ok := egress.ParseNumericIPv4(host)
		if assert.True(t, ok, host) {
			assert.Equal(t, want, got.String(), host)
		}
	}
	for _, host := range []string{"example.com", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1.2.65536", "4294967296", "08.0.0.1", "0x", "1..2", "", "1.2.3.4.example", "-1", "+1"} {
		_, ok := egress.ParseNumericIPv4(host)
		assert.False(t, ok, host)
	}
}

// listen starts a TCP listener on addr:port that counts the connections it
// accepts.
func listen(t *testing.T, addr string) (port string, accepted *atomic.Int64) {
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, accepted
}

// TestDialChecksTheAddressDialled: the guard judges the address each dial
// connects to, after the name is resolved, so a name whose answer turns
// inward between two dials (DNS rebinding) is refused on the dial that
// would go inward. The resolver here answers 127.0.0.2, which the guard
// allows, then 127.0.0.1, which it does not.
func TestDialChecksTheAddressDialled(t *testing.T) {
	port, toAllowed := listen(t, "127.0.0.2:0")
	_, toRefused := listen(t, "127.0.0.1:"+port)
	var answers atomic.Int64
	dns := fakeDNS(t, func() netip.Addr {
		if answers.Add(1) == 1 {
			return netip.MustParseAddr("127.0.0.2")
		}
		return netip.MustParseAddr("127.0.0.1")
	})
	d := &net.Dialer{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}}
	dial := egress.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}.DialContext(d)

	c, err := dial(context.Background(), "tcp", "hooks.rebind.test:"+port)
	require.NoError(t, err)
	_ = c.Close()
	_, err = dial(context.Background(), "tcp", "hooks.rebind.test:"+port)
	var re *egress.RefusedError
	require.True(t, errors.As(err, &re), "want refused, got %v", err)
	assert.Equal(t, "127.0.0.1", re.Addr.String())
	assert.Contains(t, err.Error(), "destination 127.0.0.1 is a loopback address")
	assert.Eventually(t, func() bool { return toAllowed.Load() == 1 }, time.Second, 10*time.Millisecond)
	assert.Zero(t, toRefused.Load(), "nothing reached 127.0.0.1")
}

// TestDialRunsTheDialersOwnControl: a Control the dialer already has still
// runs, before the guard's.
func TestDialRunsTheDialersOwnControl(t *testing.T) {
	port, accepted := listen(t, "127.0.0.1:0")
	var seen atomic.Value
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error { seen.Store(address); return nil }}
	_, err := egress.Guard{}.DialContext(d)(context.Background(), "tcp", "127.1:"+port)
	assert.ErrorContains(t, err, "is a loopback address")
	assert.Equal(t, "127.0.0.1:"+port, seen.Load())
	assert.Zero(t, accepted.Load())
}

// fakeDNS serves A queries over UDP with the address answer gives, and
// AAAA queries with no address; it returns its address.
func fakeDNS(t *testing.T, answer func() netip.Addr) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			// The question: the name's labels, then type and class.
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			qtype := binary.BigEndian.Uint16(q[end-4:])
			resp := append([]byte{}, q[:2]...)
			resp = append(resp, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0)
			resp = append(resp, q[12:end]...)
			if qtype == 1 {
				resp[7] = 1
				a := answer().As4()
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
				resp = append(resp, a[:]...)
			}
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}
