package wiretest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/onceflow/onceflow/providers"
)

// Inward is an HTTP server on 127.0.0.1, and on [::1] at the same port
// where the host has IPv6, that counts the connections made to it: what
// an egress guard must keep a worker from reaching.
type Inward struct {
	Port  string
	conns atomic.Int64
}

// ListenInward starts an Inward; the test's cleanup stops it.
func ListenInward(t testing.TB) *Inward {
	in := &Inward{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			in.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, in.Port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	if l, err := net.Listen("tcp6", "[::1]:"+in.Port); err == nil {
		t.Cleanup(func() { _ = l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				in.conns.Add(1)
				_ = c.Close()
			}
		}()
	}
	return in
}

// Conns is the number of connections made to in so far.
func (in *Inward) Conns() int64 { return in.conns.Load() }

// InwardHost is a URL host that leads inside the worker's host or network,
// and the words its refusal names.
type InwardHost struct {
	Host string
	Rule string
}

// InwardHosts are the spellings of inward destinations an egress guard
// must refuse: loopback written every way a URL parser or a resolver
// accepts, a name that resolves to loopback, and an address of every
// other refused network, in its IPv4, IPv6 and embedded forms.
func InwardHosts() []InwardHost {
	return []InwardHost{
		{"127.0.0.1", "is a loopback address"},
		{"127.1", "is a loopback address"},
		{"0x7f.0.0.1", "is a loopback address"},
		{"0177.0.0.1", "is a loopback address"},
		{"2130706433", "is a loopback address"},
		{"[::1]", "is a loopback address"},
		{"[::ffff:127.0.0.1]", "loopback address"},
		{"localhost", "is a loopback address"},
		{"0.0.0.0", "is an unspecified address"},
		{"[::]", "is an unspecified address"},
		{"169.254.169.254", "is the cloud metadata address (link-local)"},
		{"[::ffff:169.254.169.254]", "the cloud metadata address"},
		{"169.254.1.1", "is a link-local address"},
		{"10.0.0.1", "is a private address (RFC 1918)"},
		{"172.16.0.1", "is a private address (RFC 1918)"},
		{"192.168.1.1", "is a private address (RFC 1918)"},
		{"100.64.0.1", "is a shared address (RFC 6598)"},
		{"224.0.0.1", "is a multicast address"},
		{"[fd00::1]", "is a unique-local address"},
		{"[fe80::1]", "is a link-local address"},
		{"[ff02::1]", "is a multicast address"},
		{"[64:ff9b::a00:1]", "is a NAT64 address of 10.0.0.1, a private address"},
		{"[2002:7f00:1::1]", "is a 6to4 address of 127.0.0.1, a loopback address"},
	}
}

// RefusesInward sends m through p to every InwardHosts destination on in's
// port, path appended, and checks that each send failed permanently,
// certainly not sent, with a reason naming the rule and the way to allow
// it, and that no connection reached in.
func RefusesInward(t *testing.T, p providers.Provider, m providers.Message, in *Inward, path string) {
	t.Helper()
	for _, h := range InwardHosts() {
		m.To = "http://" + h.Host + ":" + in.Port + path
		ctx, cancel := context.WithTimeout(context.Background(), Deadline)
		_, err := p.Send(ctx, m)
		cancel()
		if err == nil {
			t.Errorf("%s: the send succeeded", h.Host)
			continue
		}
		pe := providers.Classify(err)
		if !pe.Permanent || pe.MaybeSent {
			t.Errorf("%s: Permanent %v, MaybeSent %v; want permanent and not sent: %v", h.Host, pe.Permanent, pe.MaybeSent, err)
		}
		for _, want := range []string{h.Rule, "refused by the egress guard", "allow it with ONCEFLOW_EGRESS_ALLOW="} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the reason %q does not say %q", h.Host, err, want)
			}
		}
	}
	if n := in.Conns(); n != 0 {
		t.Errorf("%d connections reached the listener on loopback", n)
	}
}
