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
// refused. It is read from the process environment by NewRedis, so that
// every command that dials REDIS_URL trusts the same CA.
const EnvRedisCAFile = "ONCEFLOW_REDIS_CA_FILE"

// redisTLS makes tlsConfig (nil for a URL without TLS) trust the
// authorities in the file caFile names, if any.
func redisTLS(tlsConfig *tls.Config, raw, caFile string) error {
	if caFile == "" {
		return nil
	}
	if tlsConfig == nil {
		// A CA set for a URL without TLS means someone expects TLS:
		// sending the password in clear instead would be silent.
		return fmt.Errorf("%s is set but %s=%s does not use TLS (rediss:// or rediss+cluster://)", EnvRedisCAFile, EnvRedisURL, RedactRedisURL(raw))
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvRedisCAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s=%s holds no PEM certificate", EnvRedisCAFile, caFile)
	}
	tlsConfig.RootCAs = pool
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
