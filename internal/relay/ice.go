package relay

import (
	"encoding/json"
	"net"
	"strconv"
	"time"
)

// ICEServer is one RTCIceServer entry, as browsers take it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICE hands each admitted peer its ICE servers: the static ones of the
// configuration, plus fresh credentials for the embedded server and for
// external TURN servers. It is safe for concurrent use.
type ICE struct {
	Static       []ICEServer // handed as they are
	Embedded     *Minter     // nil: no embedded server
	EmbeddedURLs []string
	External     *Minter // nil: no external TURN servers
	ExternalURLs []string
	// ForceRelay makes pages use relayed candidates only. Tests set it (the
	// serve --test-force-relay flag); pages honour it only from the server.
	ForceRelay bool
}

// For returns the ICE servers of p as a JSON array and when the earliest
// of their credentials expires (zero when nothing expires).
func (ice *ICE) For(p Peer) (json.RawMessage, time.Time) {
	list := make([]ICEServer, 0, len(ice.Static)+2)
	var exp time.Time
	add := func(m *Minter, urls []string) {
		if m == nil || len(urls) == 0 {
			return
		}
		c := m.Mint(p)
		list = append(list, ICEServer{URLs: urls, Username: c.Username, Credential: c.Password})
		if exp.IsZero() || c.Expires.Before(exp) {
			exp = c.Expires
		}
	}
	add(ice.Embedded, ice.EmbeddedURLs)
	add(ice.External, ice.ExternalURLs)
	list = append(list, ice.Static...)
	b, _ := json.Marshal(list) // strings only: cannot fail
	return b, exp
}

// Policy is the RTCIceTransportPolicy pages must use: "relay" when
// ForceRelay is set, else "" (the browser's default, "all").
func (ice *ICE) Policy() string {
	if ice.ForceRelay {
		return "relay"
	}
	return ""
}

// URLs returns the TURN URLs of the embedded server as browsers reach it on
// host: UDP and TCP on port, then TLS on each of tlsPorts (the gateway's
// HTTPS port, a separate TURNS port).
func URLs(host string, port int, tlsPorts ...int) []string {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	urls := []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
	for _, p := range tlsPorts {
		urls = append(urls, "turns:"+net.JoinHostPort(host, strconv.Itoa(p))+"?transport=tcp")
	}
	return urls
}
