package devstack

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/onceflow/onceflow/internal/freeport"
)

const clusterName = "onceflow-dev"

// temporalServer builds a single-process Temporal server (frontend,
// history, matching and worker services) on 127.0.0.1:port with shards
// history shards, persisting in st (whose databases and schemas it creates
// when missing), with namespace registered and searchAttributes defined.
// Its own log goes to logFile.
func temporalServer(port int, st store, shards int32, logFile, namespace string, searchAttributes map[string]enumspb.IndexedValueType, dynamic map[dynamicconfig.Key]any) (temporal.Server, error) {
	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
		return nil, err
	}
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "info", Format: "json", OutputFile: logFile}))
	if err := st.setup(logger); err != nil {
		return nil, err
	}
	if err := st.checkShards(shards, logger); err != nil {
		return nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, searchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", namespace, err)
	}
	// Despite its package, CreateNamespaces writes through whichever SQL
	// plugin the configuration names.
	if err := sqliteschema.CreateNamespaces(st.main, ns); err != nil {
		return nil, fmt.Errorf("namespace %q in %s: %w", namespace, st.where, err)
	}

	ip := "127.0.0.1"
	ports := make(map[primitives.ServiceName]int)
	for _, svc := range []primitives.ServiceName{primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		if ports[svc], err = freeport.Get(); err != nil {
			return nil, err
		}
	}
	ports[primitives.FrontendService] = port
	frontend := net.JoinHostPort(ip, strconv.Itoa(port))

	conf := &config.Config{}
	conf.Global.Membership.BroadcastAddress = ip
	conf.Persistence.DefaultStore = "default"
	conf.Persistence.VisibilityStore = "visibility"
	conf.Persistence.NumHistoryShards = shards
	conf.Persistence.DataStores = map[string]config.DataStore{"default": {SQL: st.main}, "visibility": {SQL: st.visibility}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             frontend,
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = make(map[string]config.Service)
	hosts := make(map[primitives.ServiceName]static.Hosts)
	for svc, p := range ports {
		// HTTPPort stays 0: no HTTP API beside the frontend's gRPC. Nothing
		// in Onceflow or its Web UI calls it, and its port was one more
		// picked free a moment before the server listened on it: CI saw
		// another process take it in between ("failed listening for HTTP
		// API ... address already in use"), and a start that fails there
		// cannot be tried again, since the frontend's gRPC listener it
		// opened first stays bound to the caller's port.
		conf.Services[string(svc)] = config.Service{RPC: config.RPC{GRPCPort: p, BindOnIP: ip}}
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(ip, strconv.Itoa(p)))
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend

	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	dc := dynamicconfig.StaticClient{}
	for k, v := range dynamic {
		dc[k] = v
	}
	return temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dc),
	)
}
