package redisproc

import "testing"

func TestSlotlessPrimary(t *testing.T) {
	for _, tc := range []struct {
		name, nodes string
		want        bool
	}{
		{"a primary with slots", "aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\nbbb 127.0.0.1:7001@17001 slave aaa 0 1 1 connected\n", false},
		{"a replica", "aaa 127.0.0.1:7000@17000 master - 0 1 1 connected 0-5460\nbbb 127.0.0.1:7001@17001 myself,slave aaa 0 0 1 connected\n", false},
		{"a primary without slots (a replica-to-be)", "aaa 127.0.0.1:7000@17000 master - 0 1 1 connected 0-5460\nbbb 127.0.0.1:7001@17001 myself,master - 0 0 0 connected\n", true},
		{"another node seen as a primary without slots (gossip not yet converged)", "aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\nbbb 127.0.0.1:7001@17001 master - 0 1 0 connected\n", true},
		{"a failed primary whose slots were taken over", "aaa 127.0.0.1:7000@17000 master,fail - 0 1 1 disconnected\nbbb 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 0-5460\n", false},
		{"a node still in handshake", "aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\nbbb 127.0.0.1:7001@17001 handshake,master - 0 0 0 connected\n", false},
	} {
		if _, got := slotlessPrimary(tc.nodes); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
