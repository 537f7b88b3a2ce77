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
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/onceflow/onceflow/internal/freeport"
)

const clusterName = "onceflow-dev"

// temporalServer builds a single-process Temporal server (frontend,
// history, matching and worker services) on 127.0.0.1:port, persisting in
// the SQLite file dbFile, with namespace registered and searchAttributes
// defined. Its own log goes to logFile.
func temporalServer(port int, dbFile, logFile, namespace string, searchAttributes map[string]enumspb.IndexedValueType, dynamic map[dynamicconfig.Key]any) (temporal.Server, error) {
	sqlConf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbFile,
		// WAL lets readers (visibility, the Web UI) run beside the writer.
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"},
	}
	if _, err := os.Stat(dbFile); os.IsNotExist(err) {
		if err := sqliteschema.SetupSchema(sqlConf); err != nil {
			return nil, fmt.Errorf("create Temporal database %s: %w", dbFile, err)
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, searchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlConf, ns); err != nil {
		return nil, fmt.Errorf("namespace %q: %w", namespace, err)
	}

	ip := "127.0.0.1"
	ports := make(map[primitives.ServiceName]int)
	for _, svc := range []primitives.ServiceName{primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		if ports[svc], err = freeport.Get(); err != nil {
			return nil, err
		}
	}
	ports[primitives.FrontendService] = port
	httpPort, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	frontend := net.JoinHostPort(ip, strconv.Itoa(port))

	conf := &config.Config{}
	conf.Global.Membership.BroadcastAddress = ip
	conf.Persistence.DefaultStore = "sqlite"
	conf.Persistence.VisibilityStore = "sqlite"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             frontend,
			HTTPAddress:            net.JoinHostPort(ip, strconv.Itoa(httpPort)),
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = make(map[string]config.Service)
	hosts := make(map[primitives.ServiceName]static.Hosts)
	for svc, p := range ports {
		s := config.Service{RPC: config.RPC{GRPCPort: p, BindOnIP: ip}}
		if svc == primitives.FrontendService {
			s.RPC.HTTPPort = httpPort
		}
		conf.Services[string(svc)] = s
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(ip, strconv.Itoa(p)))
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend

	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
		return nil, err
	}
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "info", Format: "json", OutputFile: logFile}))
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
