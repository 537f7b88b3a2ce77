package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/serialization"
	sqlpersistence "go.temporal.io/server/common/persistence/sql"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// Default numbers of history shards. A shard is the unit the history
// service owns and writes serially; SQLite has one writer anyway, while
// PostgreSQL commits several shards' transactions at once.
const (
	DefaultShardsSQLite   = 1
	DefaultShardsPostgres = 4
)

// store is where the embedded Temporal server keeps its data: the main
// store (histories, shards, namespaces) and the visibility store (what the
// Web UI lists and searches).
type store struct {
	main, visibility *config.SQL
	// where names the store in errors and messages, without credentials.
	where string
	// setup creates the databases and schemas that are missing.
	setup func(log.Logger) error
}

func sqliteStore(dbFile string) store {
	conf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbFile,
		// WAL lets readers (visibility, the Web UI) run beside the writer.
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"},
	}
	return store{main: conf, visibility: conf, where: "SQLite " + dbFile, setup: func(log.Logger) error {
		if _, err := os.Stat(dbFile); !os.IsNotExist(err) {
			return nil
		}
		if err := sqliteschema.SetupSchema(conf); err != nil {
			return fmt.Errorf("create Temporal database %s: %w", dbFile, err)
		}
		return nil
	}}
}

// checkShards refuses to start a cluster whose database was created with
// another number of history shards. The server itself would log a warning
// and carry on with the stored number, so --history-shards would silently
// mean nothing.
func (st store) checkShards(want int32, logger log.Logger) error {
	f := sqlpersistence.NewFactory(*st.main, resolver.NewNoopResolver(), clusterName, logger, metrics.NoopMetricsHandler, serialization.NewSerializer())
	defer f.Close()
	ms, err := f.NewClusterMetadataStore()
	if err != nil {
		return fmt.Errorf("open Temporal's cluster metadata in %s: %w", st.where, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := persistence.NewClusterMetadataManagerImpl(ms, serialization.NewSerializer(), clusterName, logger).GetCurrentClusterMetadata(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil // a new cluster: the server records want
	case err != nil:
		return fmt.Errorf("read Temporal's cluster metadata in %s: %w", st.where, err)
	case md.HistoryShardCount != want:
		return &ShardMismatchError{Requested: want, Existing: md.HistoryShardCount, Where: st.where}
	}
	return nil
}

// ShardMismatchError says that --history-shards differs from the number of
// history shards an existing Temporal database was created with, which can
// never change.
type ShardMismatchError struct {
	Requested, Existing int32
	Where               string
}

func (e *ShardMismatchError) Error() string {
	return fmt.Sprintf("--history-shards %d, but the Temporal database in %s was created with %d history shards, and that number is fixed when a cluster is created: pass --history-shards %d, or use a new database",
		e.Requested, e.Where, e.Existing, e.Existing)
}
