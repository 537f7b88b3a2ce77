package devstack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	sqlpersistence "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/driver"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/session"
	"go.temporal.io/server/common/resolver"
	dbschemas "go.temporal.io/server/schema"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
)

// EnvDB is the environment variable `onceflow dev` reads its --db from,
// which keeps the database password off the command line (and out of ps).
const EnvDB = "ONCEFLOW_DEV_DB"

// VisibilitySuffix names the visibility database after the main one, as
// Temporal's own setup does (temporal, temporal_visibility): the two
// schemas keep their versions in tables of the same name, so they cannot
// share a database.
const VisibilitySuffix = "_visibility"

// dbName is what CREATE DATABASE accepts unquoted and PostgreSQL does not
// fold: the name is spliced into the statement.
var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)

// postgresStore reads a postgres:// URL: user, password, host, port
// (5432), database (temporal) and, as query parameters, libpq connection
// settings such as sslmode, sslrootcert, sslcert and sslkey. Errors show
// the URL with its password replaced.
func postgresStore(raw string) (store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return store{}, fmt.Errorf("--db is not a URL (postgres://user:password@host:port/database)")
	}
	where := "PostgreSQL " + u.Redacted()
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return store{}, fmt.Errorf("--db %s: the scheme must be postgres:// (SQLite, the default, needs no --db)", u.Redacted())
	}
	if u.Hostname() == "" || u.User == nil || u.User.Username() == "" {
		return store{}, fmt.Errorf("--db %s needs a user and a host: postgres://user:password@host:port/database", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "temporal"
	}
	if !dbName.MatchString(db) {
		return store{}, fmt.Errorf("--db %s: database name %q must be lower-case letters, digits and _, starting with a letter or _", u.Redacted(), db)
	}
	attrs := make(map[string]string)
	for k, v := range u.Query() {
		attrs[k] = v[len(v)-1]
	}
	password, _ := u.User.Password()
	main := &config.SQL{
		PluginName:   postgresql.PluginName,
		User:         u.User.Username(),
		Password:     password,
		ConnectAddr:  net.JoinHostPort(u.Hostname(), port),
		DatabaseName: db,
		// Temporal's development-postgres12 settings: keep the connections
		// open (PostgreSQL forks a process for each new one).
		MaxConns:          20,
		MaxIdleConns:      20,
		MaxConnLifetime:   time.Hour,
		ConnectAttributes: attrs,
	}
	vis := *main
	vis.DatabaseName = db + VisibilitySuffix
	st := store{main: main, visibility: &vis, where: where}
	st.setup = func(logger log.Logger) error {
		if err := setupPostgres(main, "postgresql/v12/temporal", pgschema.Version, where, logger); err != nil {
			return err
		}
		return setupPostgres(&vis, "postgresql/v12/visibility", pgschema.VisibilityVersion, where, logger)
	}
	return st, nil
}

// CheckDB reports what is wrong with a --db URL, without connecting, so
// that a command can refuse it as bad input before anything starts.
func CheckDB(raw string) error {
	_, err := postgresStore(raw)
	return err
}

// sqlState is what lib/pq's and pgx's errors have in common.
type sqlState interface{ SQLState() string }

func hasState(err error, code string) bool {
	var s sqlState
	return errors.As(err, &s) && s.SQLState() == code
}

// setupPostgres creates the database cfg names when it is missing, then
// the schema at schemaDir of the Temporal server module's embedded schemas
// at version, as temporal-sql-tool setup-schema does, when it is missing.
// An existing schema is left as it is: the server refuses one older than it
// needs, naming both versions.
func setupPostgres(cfg *config.SQL, schemaDir, version, where string, logger log.Logger) error {
	if err := createDatabase(cfg, where); err != nil {
		return err
	}
	db, err := sqlpersistence.NewSQLAdminDB(sqlplugin.DbKindUnknown, cfg, resolver.NewNoopResolver(), logger, metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("connect to database %s of %s: %w", cfg.DatabaseName, where, err)
	}
	defer func() { _ = db.Close() }()
	_, err = db.ReadSchemaVersion(cfg.DatabaseName)
	switch {
	case err == nil:
		return nil
	case !hasState(err, "42P01"): // undefined_table: no schema yet
		return fmt.Errorf("read the schema version of database %s of %s: %w", cfg.DatabaseName, where, err)
	}
	sql, err := fs.ReadFile(dbschemas.Assets(), path.Join(schemaDir, "schema.sql"))
	if err != nil {
		return err
	}
	stmts, err := persistence.LoadAndSplitQueryFromReaders([]io.Reader{bytes.NewReader(sql)})
	if err != nil {
		return fmt.Errorf("read Temporal's %s: %w", schemaDir, err)
	}
	fail := func(err error) error {
		return fmt.Errorf("create Temporal's schema in database %s of %s: %w", cfg.DatabaseName, where, err)
	}
	if err := db.CreateSchemaVersionTables(); err != nil {
		return fail(err)
	}
	for _, stmt := range stmts {
		if err := db.Exec(stmt); err != nil {
			return fail(err)
		}
	}
	// Written last: a setup cut short leaves no version, and the next start
	// reports the table that already exists instead of a broken schema.
	if err := db.UpdateSchemaVersion(cfg.DatabaseName, version, version); err != nil {
		return fail(err)
	}
	if err := db.WriteSchemaUpdateLog("0", version, "", "initial version"); err != nil {
		return fail(err)
	}
	logger.Info("Created Temporal's schema", tag.NewStringTag("database", cfg.DatabaseName), tag.NewStringTag("version", version))
	return nil
}

// createDatabase connects to cfg's database, and creates it from the
// "postgres" maintenance database when PostgreSQL says it does not exist.
// It connects through the driver directly because the server's database
// handle only logs why a connection failed.
func createDatabase(cfg *config.SQL, where string) error {
	s, err := session.NewSession(cfg, &driver.PQDriver{}, resolver.NewNoopResolver())
	if err == nil {
		s.Close()
		return nil
	}
	if !hasState(err, "3D000") { // invalid_catalog_name
		return fmt.Errorf("connect to database %s of %s: %w", cfg.DatabaseName, where, err)
	}
	admin := *cfg
	admin.DatabaseName = "postgres"
	s, err = session.NewSession(&admin, &driver.PQDriver{}, resolver.NewNoopResolver())
	if err != nil {
		return fmt.Errorf("database %s of %s does not exist, and connecting to database postgres to create it failed: %w", cfg.DatabaseName, where, err)
	}
	defer s.Close()
	if _, err := s.Exec("CREATE DATABASE " + cfg.DatabaseName); err != nil && !hasState(err, "42P04") { // duplicate_database
		return fmt.Errorf("create database %s in %s: %w", cfg.DatabaseName, where, err)
	}
	return nil
}
