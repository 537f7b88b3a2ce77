package redisproc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLS is what a server needs to serve TLS: PEM files, as NewTLS writes
// them.
type TLS struct {
	// CAFile is the certificate authority that signed CertFile and
	// ClientCertFile; the server checks client certificates against it.
	CAFile string
	// CertFile and KeyFile are the server's certificate (for 127.0.0.1
	// and localhost) and its key.
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate signed by
	// CAFile, for a server that requires one (AuthClients).
	ClientCertFile, ClientKeyFile string
	// AuthClients makes the server refuse clients without a certificate
	// signed by CAFile (--tls-auth-clients yes); off, any client may
	// connect (--tls-auth-clients no), as with managed Redis services.
	AuthClients bool
}

// NewTLS writes a fresh certificate authority, a server certificate for
// 127.0.0.1 and localhost and a client certificate, both signed by it,
// into dir, for a test's servers. Each call makes a new authority, so the
// certificates of two calls do not trust each other.
func NewTLS(dir string) (TLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLS{}, fmt.Errorf("TLS directory: %w", err)
	}
	t := TLS{
		CAFile:         filepath.Join(dir, "ca.crt"),
		CertFile:       filepath.Join(dir, "redis.crt"),
		KeyFile:        filepath.Join(dir, "redis.key"),
		ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLS{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "onceflow test CA " + filepath.Base(dir)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return TLS{}, fmt.Errorf("create the test CA: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return TLS{}, err
	}
	if err := writePEM(t.CAFile, "CERTIFICATE", caDER); err != nil {
		return TLS{}, err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, certFile, keyFile string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("create the test %s certificate: %w", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyFile, "PRIVATE KEY", keyDER)
	}
	if err := leaf(2, "redis", x509.ExtKeyUsageServerAuth, t.CertFile, t.KeyFile); err != nil {
		return TLS{}, err
	}
	if err := leaf(3, "client", x509.ExtKeyUsageClientAuth, t.ClientCertFile, t.ClientKeyFile); err != nil {
		return TLS{}, err
	}
	return t, nil
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ClientConfig is a TLS configuration that trusts only CAFile and, when
// the server requires one, presents the client certificate.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", t.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if t.AuthClients {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// serverArgs are redis-server's directives to serve TLS only on port
// (plain TCP off), and in a cluster to speak TLS on the cluster bus and
// between primary and replica too.
func (t *TLS) serverArgs(port string) []string {
	auth := "no"
	if t.AuthClients {
		auth = "yes"
	}
	return []string{
		"--port", "0", "--tls-port", port,
		"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile,
		"--tls-ca-cert-file", t.CAFile, "--tls-auth-clients", auth,
		// A replica and the cluster bus connect as clients: with these
		// the server's certificate is theirs too, and its CA must trust
		// it (NewTLS's certificates are both).
		"--tls-replication", "yes", "--tls-cluster", "yes",
		"--tls-client-cert-file", t.ClientCertFile, "--tls-client-key-file", t.ClientKeyFile,
	}
}

// cliArgs are redis-cli's options to reach a server that serves TLS.
func (t *TLS) cliArgs() []string {
	args := []string{"--tls", "--cacert", t.CAFile}
	if t.AuthClients {
		args = append(args, "--cert", t.ClientCertFile, "--key", t.ClientKeyFile)
	}
	return args
}
