package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestValidateEHRC(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		edit  func(*EHRC)
		field string // "" = valid
		msg   string
	}{
		"defaults": {func(*EHRC) {}, "", ""},
		"origins": {func(e *EHRC) {
			e.AllowedOrigins = []string{"https://app.example.org", "http://127.0.0.1:3000", "http://[::1]:8080"}
		}, "", ""},
		"compat": {func(e *EHRC) {
			e.Compat = EHRCCompat{Enabled: true, TrustedBackends: []string{"10.0.0.5/32", "fd00::/8"}}
		}, "", ""},
		"origin no scheme": {func(e *EHRC) { e.AllowedOrigins = []string{"app.example.org"} }, "RehabRTC.ehrc.allowed_origins[0]", `must be an origin such as https://app.example.org (got "app.example.org")`},
		"origin ftp":       {func(e *EHRC) { e.AllowedOrigins = []string{"ftp://a.org"} }, "RehabRTC.ehrc.allowed_origins[0]", `must start with http:// or https:// (got "ftp://a.org")`},
		"origin slash":     {func(e *EHRC) { e.AllowedOrigins = []string{"https://a.org/"} }, "RehabRTC.ehrc.allowed_origins[0]", `must be scheme://host[:port] only, without path, query or trailing slash (got "https://a.org/")`},
		"origin wildcard":  {func(e *EHRC) { e.AllowedOrigins = []string{"https://*.a.org"} }, "RehabRTC.ehrc.allowed_origins[0]", `must not contain wildcards: list each origin (got "https://*.a.org")`},
		"origin star":      {func(e *EHRC) { e.AllowedOrigins = []string{"*"} }, "RehabRTC.ehrc.allowed_origins[0]", `must be an origin such as https://app.example.org (got "*")`},
		"too many origins": {func(e *EHRC) {
			for range MaxOrigins + 1 {
				e.AllowedOrigins = append(e.AllowedOrigins, "https://a.org")
			}
		}, "RehabRTC.ehrc.allowed_origins", "at most 64 origins (got 65)"},
		"cidr bad":     {func(e *EHRC) { e.Compat.TrustedBackends = []string{"10.0.0.5"} }, "RehabRTC.ehrc.compat.trusted_backends[0]", `must be a CIDR such as 10.0.0.5/32 (got "10.0.0.5")`},
		"compat empty": {func(e *EHRC) { e.Compat.Enabled = true }, "RehabRTC.ehrc.compat.enabled", "needs compat.trusted_backends (the EHRC backend's addresses) or allowed_origins (the EHRC app's origins)"},
	} {
		t.Run(name, func(t *testing.T) {
			c := Default()
			tt.edit(&c.RehabRTC.EHRC)
			errs := fieldErrors(t, c.Validate())
			if tt.field == "" {
				if len(errs) != 0 {
					t.Fatalf("valid config refused: %v", errs)
				}
				return
			}
			if !slices.ContainsFunc(errs, func(e *FieldError) bool { return e.Field == tt.field && e.Msg == tt.msg }) {
				t.Fatalf("errors %v, want %s: %s", errs, tt.field, tt.msg)
			}
		})
	}
}

func TestEHRCFromFile(t *testing.T) {
	t.Parallel()
	c := Default()
	if errs := decode([]byte(`{"RehabRTC": {"ehrc": {"allowed_origins": ["https://app.example.org"],
		"compat": {"enabled": true, "trusted_backends": ["10.1.2.3/16"]}}}}`), c); errs != nil {
		t.Fatal(errs)
	}
	if errs := decode([]byte(`{"RehabRTC": {"ehrc": {"compat": {"enable": true}}}}`), Default()); len(errs) != 1 || !strings.Contains(errs[0].Error(), "enable") {
		t.Fatalf("unknown key in the compat block: %v", errs)
	}
	e := c.RehabRTC.EHRC
	if !e.Compat.Enabled || e.AllowedOrigins[0] != "https://app.example.org" ||
		!slices.Equal(e.TrustedPrefixes(), []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}) {
		t.Fatalf("decoded %+v", e)
	}
}
