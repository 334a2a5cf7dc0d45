package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// onlyTURN is injected into a page before it loads: it keeps, of the ICE
// servers the page hands to RTCPeerConnection, only the URLs that start
// with prefix, so the test decides which TURN transport carries the call.
// The relay-only policy itself comes from the server (--test-force-relay).
func onlyTURN(prefix string) string {
	return `(() => {
		const Real = window.RTCPeerConnection;
		const keep = (cfg) => {
			if (!cfg || !cfg.iceServers) return cfg;
			const iceServers = cfg.iceServers.map((s) => ({ ...s, urls: [].concat(s.urls).filter((u) => u.startsWith(` + strconv.Quote(prefix) + `)) }))
				.filter((s) => s.urls.length > 0);
			return { ...cfg, iceServers };
		};
		window.RTCPeerConnection = class extends Real {
			constructor(cfg) { super(keep(cfg)); }
			setConfiguration(cfg) { return super.setConfiguration(keep(cfg)); }
		};
	})()`
}

// metric reads one sample from the service's /metrics.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	return testutil.Metric(s.t, s.service+"/metrics", name)
}

// TestForcedRelayVideo: two pages restricted to relayed candidates decode
// each other's video through the embedded TURN server over UDP, over TCP,
// and over TLS on the gateway's HTTPS port; the indicator says relayed.
func TestForcedRelayVideo(t *testing.T) {
	needBrowser(t)
	cert := testutil.SelfSignedCert(t, "127.0.0.1")
	for _, tt := range []struct {
		name, prefix, protocol string
		tls                    bool
	}{
		{"udp", "turn:", "udp", false},
		{"tcp", "turn:", "tcp", false},
		{"tls-on-gateway-port", "turns:", "tls", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServerWith(t, func(rr map[string]any) {
				if tt.tls {
					gw := rr["gateway"].(map[string]any)
					gw["tls_cert"], gw["tls_key"] = cert.CertFile, cert.KeyFile
					rr["url_scheme"] = "https"
				}
			}, "--test-force-relay")
			prefix := tt.prefix
			sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
			open := func(name, uuid string) *page {
				return openPageWith(t, name, sess.link(t, uuid)+"&name="+name, pageSetup{script: onlyTransport(prefix, tt.protocol)})
			}
			th, pa := open("therapist", therapistUUID), open("patient", patient1UUID)
			before := srv.metric("rehabrtc_turn_relayed_bytes_to_peers_total")
			for _, p := range []*page{th, pa} {
				p.waitVideoFlowing(1, 30*time.Second)
				p.waitJS("relayed over "+tt.protocol, `window.rehab.stats().then(s => Object.values(s).some(v => v.route === 'relay'))`, 10*time.Second)
				got, err := eval[string](p, `window.rehab.stats().then(s => Object.values(s).map(v => v.relayProtocol).join(','))`)
				if err != nil || !strings.Contains(got, tt.protocol) {
					t.Errorf("%s: selected relay protocol %q (%v), want %s", p.name, got, err, tt.protocol)
				}
				p.waitJS("the quality indicator says relayed",
					`[...document.querySelectorAll('.tile .quality')].some((q) => q.dataset.route === 'relay')`, 10*time.Second)
			}
			if after := srv.metric("rehabrtc_turn_relayed_bytes_to_peers_total"); after-before < 50_000 {
				t.Errorf("TURN relayed %v bytes: the video did not go through the relay", after-before)
			}
			th.shot("relayed-" + tt.name)
		})
	}
}

// onlyTransport is onlyTURN narrowed to one transport= value.
func onlyTransport(prefix, protocol string) string {
	q := "?transport=udp"
	if protocol != "udp" {
		q = "?transport=tcp"
	}
	return strings.Replace(onlyTURN(prefix), `u.startsWith(`+strconv.Quote(prefix)+`)`,
		`u.startsWith(`+strconv.Quote(prefix)+`) && u.endsWith(`+strconv.Quote(q)+`)`, 1)
}

// TestCoturnRelayVideo: with the embedded server off and coturn configured
// as an external TURN server (shared secret from the environment), pages
// get coturn credentials minted per peer and decode each other's video
// through coturn.
func TestCoturnRelayVideo(t *testing.T) {
	needBrowser(t)
	secret := "e2e-coturn-secret-0123456789abcdef0123456789"
	addr := testutil.Coturn(t, secret)
	srv := startServerEnv(t, func(rr map[string]any) {
		rr["turn"] = map[string]any{"enabled": false, "external": map[string]any{"urls": []string{"turn:" + addr + "?transport=udp"}}}
	}, []string{"REHABRTC_TURN_SECRET=" + secret}, "--test-force-relay")
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID})
	th := openPage(t, "therapist", sess.link(t, therapistUUID)+"&name=T")
	pa := openPage(t, "patient", sess.link(t, patient1UUID)+"&name=P")
	for _, p := range []*page{th, pa} {
		p.waitVideoFlowing(1, 30*time.Second)
		p.waitJS("relayed", `window.rehab.stats().then(s => Object.values(s).some(v => v.route === 'relay'))`, 10*time.Second)
	}
	if strings.Contains(srv.out.String(), secret) {
		t.Error("the coturn secret is in the logs")
	}
}
