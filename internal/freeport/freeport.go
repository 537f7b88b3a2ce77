// Package freeport finds TCP ports on loopback that nothing listens on, for
// the servers the dev stack, the chaos harness and the tests start.
package freeport

import (
	"fmt"
	"net"
)

// Get returns a loopback port that was free a moment ago. Another process
// may take it before the caller listens on it; callers that can listen on
// port 0 instead should.
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
