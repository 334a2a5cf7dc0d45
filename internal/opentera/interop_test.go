package opentera_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
)

// TestOpenChecksMainServerTLS: with verification on (the default), the
// start-up checks the main server's certificate and stops at once, in one
// line naming the setting to change; Backend.ca_file trusts an operator's
// CA. The main server is the teratest double over real TLS.
func TestOpenChecksMainServerTLS(t *testing.T) {
	r := teratest.StartRedis(t)
	r.Set(opentera.ServiceTokenKey, secret)
	r.SetService(serviceKey, serviceUUID, "127.0.0.1", 4070)
	ca := teratest.NewCA(t, "Operator CA")
	caFile := ca.WritePEM(t, t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tt := range map[string]struct {
		certFor string // the name the main server's certificate holds
		caFile  string
		verify  bool
		want    string // in the error; "" = success
	}{
		"self-signed, verified":    {"127.0.0.1", "", true, `presents a certificate this host does not trust (tls: failed to verify certificate: x509: certificate signed by unknown authority): set Backend.ca_file to the PEM file of the CA that signed it`},
		"operator's CA in ca_file": {"127.0.0.1", caFile, true, ""},
		"certificate for another":  {"main.example.org", caFile, true, "presents a certificate for another name"},
		"verification off":         {"127.0.0.1", "", false, ""},
		"ca_file missing":          {"127.0.0.1", caFile + ".nope", true, "Backend.ca_file: open "},
	} {
		t.Run(name, func(t *testing.T) {
			m := teratest.StartMainServerOn(t, serviceUUID, secret, "127.0.0.1:0", ca.Issue(t, tt.certFor))
			cfg := config.Default()
			cfg.Redis.Hostname, cfg.Redis.Port = "127.0.0.1", r.Port
			cfg.Backend = config.Backend{Hostname: "127.0.0.1", Port: m.Listener.Addr().(*net.TCPAddr).Port,
				VerifyTLS: tt.verify, CAFile: tt.caFile}
			it, err := opentera.Open(context.Background(), cfg, log)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				it.Close()
				return
			}
			if err == nil {
				it.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line with %q", err, tt.want)
			}
		})
	}
}
