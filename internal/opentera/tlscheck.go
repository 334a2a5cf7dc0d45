package opentera

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// LoadCAFile returns the system's CAs plus those of the PEM file at path
// (Backend.ca_file), so an operator can trust their own CA instead of
// turning verification off.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("Backend.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("Backend.ca_file: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// CheckTLS opens one TLS connection to the main server, so that a
// certificate this host does not trust stops the start-up with a line
// naming the setting to change, instead of failing every later "start"
// with "Cannot create session". Network errors are retried until ctx ends
// (the main server's nginx may come up a little after us); a certificate
// error is final at once.
func (b *Backend) CheckTLS(ctx context.Context) error {
	d := tls.Dialer{Config: b.tls}
	delay := 100 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "tcp", b.addr)
		if err == nil {
			return conn.Close()
		}
		if msg := certProblem(err); msg != "" {
			return fmt.Errorf("Backend: the main server %s %s (%v): %s", b.base, msg, err, certAdvice(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Backend: cannot reach the main server %s (Backend.hostname, Backend.port): %w", b.base, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// certProblem says what is wrong with the server's certificate, or "" for
// any other error (network, protocol).
func certProblem(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &hostname):
		return "presents a certificate for another name"
	case errors.As(err, &unknown):
		return "presents a certificate this host does not trust"
	case errors.As(err, &invalid):
		return "presents an invalid certificate"
	case errors.As(err, &verify):
		return "presents a certificate that does not verify"
	}
	return ""
}

func certAdvice(err error) string {
	var hostname x509.HostnameError
	if errors.As(err, &hostname) {
		return "set Backend.hostname to a name the certificate holds"
	}
	return "set Backend.ca_file to the PEM file of the CA that signed it (or Backend.verify_tls to false, for development only)"
}
