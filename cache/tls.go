package cache

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLSOptions turn TLS on and say how to verify the server and whom to
// present. The zero value verifies the server against the system roots.
type TLSOptions struct {
	// CAFile is a PEM file of extra certificate authorities trusted beside
	// the system roots, for a private CA.
	CAFile string
	// CertFile and KeyFile are a client certificate and key, PEM, for
	// servers that require mutual TLS. Both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the server certificate;
	// empty checks the host being dialled.
	ServerName string
	// InsecureSkipVerify accepts any server certificate. For development
	// only: it gives up the protection TLS is for.
	InsecureSkipVerify bool
}

// config builds the tls.Config, reading the files now so that a missing or
// malformed file is a start-up error rather than an outage later.
func (o *TLSOptions) config() (*tls.Config, error) {
	if o == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // refused in production by config
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read TLS CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("TLS client certificate needs both a certificate file and a key file")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// tlsCause names the TLS problem behind a connection error, so that one log
// line says what an operator must fix.
func tlsCause(msg string) string {
	switch {
	case strings.Contains(msg, "unknown authority"):
		return "TLS: server certificate signed by an unknown authority (is its CA file configured?)"
	case strings.Contains(msg, "certificate has expired"), strings.Contains(msg, "not yet valid"):
		return "TLS: server certificate expired or not yet valid"
	case strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "certificate is not valid for"),
		strings.Contains(msg, "cannot validate certificate for"):
		return "TLS: server certificate does not match the host name (is the server name right?)"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return "TLS: server requires a client certificate (mutual TLS)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "TLS: server does not speak TLS on this port"
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"):
		return "TLS handshake failed"
	}
	return ""
}
