package redisproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onceflow/onceflow/internal/freeport"
)

// ClusterNodeTimeout is the cluster-node-timeout of a Cluster: how long a
// primary may be silent before its replica takes over. Redis's default of
// 15s would make a failover test wait that long; on loopback a second is
// plenty to tell a dead node from a busy one.
const ClusterNodeTimeout = time.Second

// Cluster is a Redis Cluster of redis-server child processes on loopback,
// each with its append-only file on, as Start runs them.
type Cluster struct {
	// Nodes are every node, primaries and replicas, in the order started.
	Nodes []*Server
	// Password is the nodes' requirepass, "" for none.
	Password string
	// TLS, if set, is the nodes' TLS: they serve TLS only, and speak it
	// on the cluster bus and between primary and replica.
	TLS *TLS
}

// StartCluster starts primaries*(1+replicas) nodes with their files under
// dir and joins them into one cluster with redis-cli --cluster create
// (slots spread evenly over the primaries, each with its replicas), and
// returns once every node sees the cluster as ok and every replica has
// synchronised. It takes a second or two. A password other than "" is
// required of clients (requirepass) and used between the nodes
// (masterauth).
func StartCluster(dir string, primaries, replicas int, password string) (*Cluster, error) {
	return StartClusterWith(dir, primaries, replicas, Options{Password: password})
}

// StartClusterWith starts a cluster as StartCluster does, its nodes
// secured by opts.
func StartClusterWith(dir string, primaries, replicas int, opts Options) (*Cluster, error) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, fmt.Errorf("redis-cli is not on the PATH (apt-get install -y redis-tools)")
	}
	c := &Cluster{Password: opts.Password, TLS: opts.TLS}
	for i := range primaries * (1 + replicas) {
		port, err := freeport.Get()
		if err != nil {
			c.Stop()
			return nil, err
		}
		// The cluster bus listens on its own port; Redis's default of
		// port+10000 may be taken or beyond 65535.
		bus, err := freeport.Get()
		if err != nil {
			c.Stop()
			return nil, err
		}
		s, err := StartWith(filepath.Join(dir, "node"+strconv.Itoa(i)), port, opts,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10))
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	var args []string
	if c.TLS != nil {
		args = c.TLS.cliArgs()
	}
	args = append(args, "--cluster", "create")
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	cli := exec.Command("redis-cli", args...)
	if c.Password != "" {
		// Through the environment, not -a, which ps would show.
		cli.Env = append(os.Environ(), "REDISCLI_AUTH="+c.Password)
	}
	if out, err := cli.CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx, len(c.Nodes)); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Addrs are the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL is the redis+cluster:// URL of the cluster, as REDIS_URL takes it,
// rediss+cluster:// and with the password when the nodes have them.
func (c *Cluster) URL() string {
	return scheme("redis", Options{TLS: c.TLS}) + "+cluster://" + auth(c.Password) + strings.Join(c.Addrs(), ",")
}

// Node returns the node listening on addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// WaitHealthy waits until the nodes that run see cluster_state:ok, every
// slot served, and at least live of them connected, with every replica's
// link to its primary up.
func (c *Cluster) WaitHealthy(ctx context.Context, live int) error {
	var last string
	for {
		ok := 0
		for _, n := range c.Nodes {
			if n.cmd == nil {
				continue
			}
			why := n.clusterHealth(ctx)
			if why == "" {
				ok++
			} else {
				last = n.Addr + ": " + why
			}
		}
		if ok >= live && ok == c.running() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster was not healthy in time: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) running() int {
	n := 0
	for _, s := range c.Nodes {
		if s.cmd != nil {
			n++
		}
	}
	return n
}

// clusterHealth is "" when the node sees the cluster as ok and, if it is a
// replica, is linked to its primary; otherwise what is not yet so.
func (s *Server) clusterHealth(ctx context.Context) string {
	rdb, err := s.Client()
	if err != nil {
		return err.Error()
	}
	defer func() { _ = rdb.Close() }()
	info, err := rdb.ClusterInfo(ctx).Result()
	if err != nil {
		return err.Error()
	}
	if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
		return "cluster not ok yet"
	}
	repl, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return err.Error()
	}
	if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
		return "replica not linked to its primary yet"
	}
	// A node that redis-cli --cluster create made a replica can still
	// answer as a primary with no slots, cluster_state:ok included, until
	// its CLUSTER REPLICATE takes effect, and the other nodes go on seeing
	// it as one until gossip tells them otherwise: CI saw six primaries,
	// then five, in CLUSTER SHARDS after a healthy wait for three with one
	// replica each. In a formed cluster every live primary serves slots;
	// one without any is a replica-to-be (or, after a failover, a former
	// primary about to follow the node that took its slots over), so the
	// cluster is healthy only when no node's view holds one.
	nodes, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		return err.Error()
	}
	if id, ok := slotlessPrimary(nodes); ok {
		return "node " + id + " is seen as a primary without slots: not yet the replica it is to be"
	}
	return ""
}

// slotlessPrimary reads one node's CLUSTER NODES and returns a live node
// (itself or another) that it sees as a primary serving no slot. Each line
// is "<id> <addr> <flags> <primary> <ping> <pong> <epoch> <link> [<slot>...]";
// nodes flagged fail, fail?, handshake or noaddr are not live (a killed
// primary whose slots a replica took over stays listed so).
func slotlessPrimary(clusterNodes string) (string, bool) {
	for _, line := range strings.Split(clusterNodes, "\n") {
		fields := strings.Fields(line)
		if len(fields) != 8 {
			continue // a node with slots, or not a node's line
		}
		flags := strings.Split(fields[2], ",")
		if !slices.Contains(flags, "master") {
			continue
		}
		if slices.ContainsFunc(flags, func(f string) bool {
			return f == "fail" || f == "fail?" || f == "handshake" || f == "noaddr"
		}) {
			continue
		}
		return fields[0], true
	}
	return "", false
}

// Stop stops every node. The files stay, as Server.Stop leaves them.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}
