package redisconn

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

// EnvCAFile names a PEM file of the certificate authorities to trust for
// a rediss:// or rediss+cluster:// REDIS_URL, for a Redis whose
// certificate a private CA signed. Set, it replaces the system's roots for
// Redis (as redis-cli --cacert does): a certificate it did not sign is
// refused.
const EnvCAFile = "ONCEFLOW_REDIS_CA_FILE"

// EnvCertFile and EnvKeyFile name the PEM files of a client certificate
// and its key, for a Redis that requires one (tls-auth-clients yes,
// redis-server's default with TLS). Both or neither.
const (
	EnvCertFile = "ONCEFLOW_REDIS_CERT_FILE"
	EnvKeyFile  = "ONCEFLOW_REDIS_KEY_FILE"
)

// applyTLS applies c's TLS files to tlsConfig, nil for a REDIS_URL raw
// without TLS.
func (c Config) applyTLS(tlsConfig *tls.Config, raw string) error {
	caFile, certFile, keyFile := c.CAFile, c.CertFile, c.KeyFile
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil
	}
	if tlsConfig == nil {
		// TLS settings for a URL without TLS mean someone expects TLS:
		// sending the password in clear instead would be silent.
		set := EnvCAFile
		if caFile == "" {
			set = EnvCertFile
		}
		return fmt.Errorf("%s is set but %s=%s does not use TLS (rediss:// or rediss+cluster://)", set, EnvURL, Redact(raw))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s=%s holds no PEM certificate", EnvCAFile, caFile)
		}
		tlsConfig.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return fmt.Errorf("%s and %s go together: set both or neither", EnvCertFile, EnvKeyFile)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("%s=%s, %s=%s: %w", EnvCertFile, certFile, EnvKeyFile, keyFile, err)
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
	return fmt.Errorf("%w (the server closed the connection: if it serves TLS only, %s must start with rediss:// or rediss+cluster://)", err, EnvURL)
}
