package onceflow_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/redisconn"
)

// The cluster file adds six durable cluster nodes and a one-shot that
// joins them as three primaries with a replica each, and points workers
// and the API at all six, after the cluster is formed.
func TestComposeRedisClusterFile(t *testing.T) {
	p := loadComposeFiles(t, "docker-compose.yml", "docker-compose.redis-cluster.yml")
	var nodes []string
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("redis-node-%d", i)
		nodes = append(nodes, name)
		s := service(t, p, name)
		assert.Regexp(t, pinned, s.Image, name)
		cmd := strings.Join(s.Command, " ")
		for _, want := range []string{"--cluster-enabled yes", "--appendonly yes", "--maxmemory-policy noeviction",
			"--cluster-config-file /data/nodes.conf", "--cluster-announce-hostname " + name, "--cluster-preferred-endpoint-type hostname"} {
			assert.Contains(t, cmd, want, name)
		}
		require.NotEmpty(t, s.Volumes, name)
		assert.Equal(t, "/data", s.Volumes[0].Target, "%s keeps its AOF and nodes.conf", name)
		assert.NotNil(t, s.HealthCheck, name)
		assert.Empty(t, s.Ports, "%s publishes nothing", name)
	}

	create := service(t, p, "redis-cluster-create")
	assert.Regexp(t, pinned, create.Image)
	var deps []string
	for dep, d := range create.DependsOn {
		assert.Equal(t, "service_healthy", d.Condition, dep)
		deps = append(deps, dep)
	}
	slices.Sort(deps)
	assert.Equal(t, nodes, deps, "the cluster is created once every node answers")
	script := strings.Join(create.Command, " ")
	assert.Contains(t, script, "--cluster-replicas 1")
	assert.Contains(t, script, "for n in 1 2 3 4 5 6")
	assert.Contains(t, script, "cluster_state:ok", "runs once, and waits until the cluster serves every slot")

	for _, name := range []string{"onceflow-worker", "onceflow-api"} {
		s := service(t, p, name)
		assert.Equal(t, "service_completed_successfully", s.DependsOn["redis-cluster-create"].Condition, name)
		raw := *s.Environment["REDIS_URL"]
		require.True(t, redisconn.IsClusterURL(raw), "%s: %s", name, raw)
		opts, err := redisconn.ParseClusterURL(raw)
		require.NoError(t, err, name)
		var seeds []string
		for _, a := range opts.Addrs {
			host, port, _ := strings.Cut(a, ":")
			assert.Equal(t, "6379", port, name)
			seeds = append(seeds, host)
		}
		assert.Equal(t, nodes, seeds, "%s seeds from every node", name)
	}
	assert.Equal(t, "1", *service(t, p, "onceflow-worker").Environment["ONCEFLOW_REDIS_WAIT_REPLICAS"], "a claim counts once its primary's replica has it")
}
