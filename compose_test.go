package onceflow_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/workflows"
)

// testDBPassword is the database password the tests set (the file
// requires one).
const testDBPassword = "test-db-password"

// loadCompose loads docker-compose.yml as `docker compose` would, with a
// database password set.
func loadCompose(t *testing.T) *types.Project { return loadComposeFiles(t, "docker-compose.yml") }

// loadComposeFiles loads compose files, each on top of the ones before, as
// `docker compose -f ... -f ...` would, with a database password set.
func loadComposeFiles(t *testing.T, files ...string) *types.Project {
	opts, err := cli.NewProjectOptions(files,
		cli.WithEnv([]string{"POSTGRES_PASSWORD=" + testDBPassword}),
		cli.WithName("onceflow"))
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err)
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	s, err := p.GetService(name)
	require.NoError(t, err, "service %s", name)
	return s
}

func TestComposeHasEveryPartOfTheStack(t *testing.T) {
	p := loadCompose(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	assert.Equal(t, []string{"onceflow-api", "onceflow-worker", "postgresql", "redis", "temporal", "temporal-schema", "temporal-setup", "temporal-ui"}, names)
}

var pinned = regexp.MustCompile(`^[a-z0-9./-]+(/[a-z0-9._-]+)*:[0-9]+\.[0-9]+(\.[0-9]+)?(-[a-z0-9.]+)?$`)

func TestComposeImagesArePinned(t *testing.T) {
	for name, s := range loadCompose(t).Services {
		if s.Build != nil {
			assert.Equal(t, "onceflow:dev", s.Image, "%s builds the Onceflow image", name)
			continue
		}
		assert.Regexp(t, pinned, s.Image, "%s: image must carry an exact version tag", name)
	}
}

func TestComposePublishesTheUsualPorts(t *testing.T) {
	p := loadCompose(t)
	published := func(name string) map[string]uint32 {
		out := map[string]uint32{}
		for _, port := range service(t, p, name).Ports {
			out[port.Published] = port.Target
		}
		return out
	}
	for _, name := range []string{"temporal", "temporal-ui", "onceflow-api"} {
		for _, port := range service(t, p, name).Ports {
			assert.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %s on loopback only", name, port.Published)
		}
	}
	assert.Equal(t, map[string]uint32{"7233": 7233}, published("temporal"))
	assert.Equal(t, map[string]uint32{"8233": 8080}, published("temporal-ui"))
	assert.Equal(t, map[string]uint32{"8080": 8080}, published("onceflow-api"))
	assert.Empty(t, published("onceflow-worker"), "workers scale, so they publish nothing")
	assert.Contains(t, strings.Join(service(t, p, "onceflow-api").Command, " "), "0.0.0.0:8080", "the API listens beyond the container's loopback")
}

func TestComposePointsOnceflowAtTemporalAndRedis(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"onceflow-worker", "onceflow-api"} {
		env := service(t, p, name).Environment
		host, port, ok := strings.Cut(*env["TEMPORAL_ADDRESS"], ":")
		require.True(t, ok, "%s: TEMPORAL_ADDRESS host:port", name)
		assert.Equal(t, "temporal", host, name)
		assert.Equal(t, "7233", port, name)
		assert.Equal(t, "default", *env["TEMPORAL_NAMESPACE"], name)
		assert.Equal(t, workflows.DefaultTaskQueue, *env["ONCEFLOW_TASK_QUEUE"], name)
		// The API reads the dedup ledger there to refuse reused keys.
		require.NotNil(t, env["REDIS_URL"], "%s: REDIS_URL", name)
		assert.Equal(t, "redis://redis:6379/0", *env["REDIS_URL"], name)
	}
	w := service(t, p, "onceflow-worker")
	require.NotNil(t, w.Deploy)
	require.NotNil(t, w.Deploy.Replicas)
	assert.GreaterOrEqual(t, *w.Deploy.Replicas, 2, "several workers share the task queue")
	assert.Equal(t, []string{"worker"}, []string(w.Command))

	r := service(t, p, "redis")
	assert.Contains(t, strings.Join(r.Command, " "), "--appendonly yes", "dedup records must survive a Redis restart")
	require.NotEmpty(t, r.Volumes)
	assert.Equal(t, "/data", r.Volumes[0].Target)
}

func TestComposeDependenciesWaitForHealthyServices(t *testing.T) {
	p := loadCompose(t)
	oneShot := map[string]bool{"temporal-schema": true, "temporal-setup": true}
	for name, s := range p.Services {
		if oneShot[name] {
			continue
		}
		require.NotNil(t, s.HealthCheck, "%s has a health check", name)
		assert.NotEmpty(t, s.HealthCheck.Test, name)
	}
	want := map[string]map[string]string{
		"temporal-schema": {"postgresql": "service_healthy"},
		"temporal":        {"temporal-schema": "service_completed_successfully"},
		"temporal-setup":  {"temporal": "service_healthy"},
		"temporal-ui":     {"temporal": "service_healthy"},
		"onceflow-worker": {"temporal": "service_healthy", "temporal-setup": "service_completed_successfully", "redis": "service_healthy"},
		"onceflow-api":    {"temporal": "service_healthy", "temporal-setup": "service_completed_successfully", "onceflow-worker": "service_started"},
	}
	for name, deps := range want {
		got := map[string]string{}
		for dep, d := range service(t, p, name).DependsOn {
			got[dep] = d.Condition
			if d.Condition == "service_healthy" {
				assert.NotNil(t, service(t, p, dep).HealthCheck, "%s waits for %s to be healthy, so it needs a health check", name, dep)
			}
		}
		assert.Equal(t, deps, got, name)
	}
}

// The setup command's text is checked, not a registration: compose is not
// run here.
func TestComposeSetupCommandNamesEverySearchAttributeWithItsType(t *testing.T) {
	setup := strings.Join(service(t, loadCompose(t), "temporal-setup").Command, "\n")
	for name, typ := range workflows.SearchAttributeTypes {
		assert.Contains(t, setup, name+":"+typ.String(), "the CLI's type names are the enum's")
	}
}

// The Dockerfile's text is checked, not a build: docker is not run here.
// What the image's binary links is checked below, with its build tags.
func TestDockerfileNamesGoModsGoVersionCgoOffAndCmdOnceflow(t *testing.T) {
	docker, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	mod, err := os.ReadFile("go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(mod)
	require.NotNil(t, goVersion)
	assert.Contains(t, string(docker), "FROM golang:"+string(goVersion[1])+"-")
	assert.Contains(t, string(docker), "./cmd/onceflow")
	assert.Contains(t, string(docker), "CGO_ENABLED=0")
}

// The image carries what production runs: the binary the Dockerfile builds
// (-tags nodev) links neither the embedded Temporal server, nor the Web UI,
// nor the chaos harness.
func TestImageBinaryLeavesOutTheDevStackAndTheChaosHarness(t *testing.T) {
	docker, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	build := regexp.MustCompile(`(?m)^RUN .*go build (.*) ./cmd/onceflow$`).FindSubmatch(docker)
	require.NotNil(t, build, "the Dockerfile builds ./cmd/onceflow")
	tags := regexp.MustCompile(`-tags (\S+)`).FindSubmatch(build[1])
	require.NotNil(t, tags, "the Dockerfile builds with build tags")

	deps := func(tags string) []string {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", "./cmd/onceflow").CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.Fields(string(out))
	}
	uses := func(pkgs []string, prefix string) bool {
		return slices.ContainsFunc(pkgs, func(p string) bool { return strings.HasPrefix(p, prefix) })
	}
	image := deps(string(tags[1]))
	for _, left := range []string{"go.temporal.io/server/", "github.com/temporalio/ui-server/", "github.com/onceflow/onceflow/internal/devstack", "github.com/onceflow/onceflow/internal/chaos"} {
		assert.False(t, uses(image, left), "the image's binary links %s", left)
	}
	assert.True(t, uses(deps(""), "go.temporal.io/server/"), "the default build keeps `onceflow dev`")
}
