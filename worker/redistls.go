package worker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// EnvRedisCAFile names a PEM file of the certificate authorities to trust
// for a rediss:// or rediss+cluster:// REDIS_URL, for a Redis whose
// certificate a private CA signed. Set, it replaces the system's roots for
// Redis (as redis-cli --cacert does): a certificate it did not sign is
// refused. Like the other variables here it is read from the process
// environment by NewRedis, so that every command that dials REDIS_URL
// uses the same TLS settings.
const EnvRedisCAFile = "ONCEFLOW_REDIS_CA_FILE"

// EnvRedisCertFile and EnvRedisKeyFile name the PEM files of a client
// certificate and its key, for a Redis that requires one
// (tls-auth-clients yes, redis-server's default with TLS). Both or neither.
const (
	EnvRedisCertFile = "ONCEFLOW_REDIS_CERT_FILE"
	EnvRedisKeyFile  = "ONCEFLOW_REDIS_KEY_FILE"
)

// redisTLS applies the TLS variables getenv holds to tlsConfig, nil for a
// REDIS_URL raw without TLS.
func redisTLS(tlsConfig *tls.Config, raw string, getenv func(string) string) error {
	caFile, certFile, keyFile := getenv(EnvRedisCAFile), getenv(EnvRedisCertFile), getenv(EnvRedisKeyFile)
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil
	}
	if tlsConfig == nil {
		// TLS settings for a URL without TLS mean someone expects TLS:
		// sending the password in clear instead would be silent.
		set := EnvRedisCAFile
		if caFile == "" {
			set = EnvRedisCertFile
		}
		return fmt.Errorf("%s is set but %s=%s does not use TLS (rediss:// or rediss+cluster://)", set, EnvRedisURL, RedactRedisURL(raw))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvRedisCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s=%s holds no PEM certificate", EnvRedisCAFile, caFile)
		}
		tlsConfig.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return fmt.Errorf("%s and %s go together: set both or neither", EnvRedisCertFile, EnvRedisKeyFile)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("%s=%s, %s=%s: %w", EnvRedisCertFile, certFile, EnvRedisKeyFile, keyFile, err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// plainToTLSHint says what an error of a client without TLS most likely
// means when the server hung up on it: a TLS-only Redis closes a
// connection that does not start with a TLS handshake, which the client
// sees only as EOF or a reset.
func plainToTLSHint(rdb redis.UniversalClient, err error) error {
	var tlsConfig *tls.Config
	switch c := rdb.(type) {
	case *redis.Client:
		tlsConfig = c.Options().TLSConfig
	case *redis.ClusterClient:
		tlsConfig = c.Options().TLSConfig
	default:
		return err
	}
	if tlsConfig != nil || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return err
	}
	return fmt.Errorf("%w (the server closed the connection: if it serves TLS only, %s must start with rediss:// or rediss+cluster://)", err, EnvRedisURL)
}
