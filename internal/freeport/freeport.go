// Package freeport finds TCP ports on loopback that nothing listens on, for
// the servers the dev stack, the chaos harness and the tests start.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the bottom of the range Get picks from.
const lowest = 10000

// Get returns a loopback port that nothing listened on a moment ago.
//
// It picks at random below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), which the kernel never hands to an
// outgoing connection or to a listener on port 0. A port that the kernel
// chose for a check on port 0 and then released was taken, under the
// suite's load, by an outgoing connection before the caller could listen
// on it ("bind: address already in use"); below the range only another
// explicit pick can take it, and a random one rarely does. Where the range
// cannot be read or leaves no room below it, Get falls back to port 0.
// Callers that can listen on port 0 themselves should.
func Get() (int, error) {
	if start := ephemeralStart(); start > lowest+1000 {
		for range 50 {
			p := lowest + rand.IntN(start-lowest)
			if free(p) {
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func free(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ephemeralStart is the first port of Linux's ephemeral range, or 0.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0
	}
	start, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return start
}
