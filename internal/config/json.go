package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
)

// StringList is a list of strings that JSON may also write as one string, as
// RTCIceServer.urls allows. It always encodes as an array.
type StringList []string

// UnmarshalJSON accepts a string, an array of strings, or null (no change).
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	case len(b) > 0 && b[0] == '[':
		var ss []string
		if err := json.Unmarshal(b, &ss); err == nil {
			*l = ss
			return nil
		}
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[StringList]()}
}

// MarshalJSON encodes the list as an array, [] when empty.
func (l StringList) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(l))
}

// jsonKind names the kind of the JSON value b, as encoding/json does in
// UnmarshalTypeError.Value.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// JSON renders the complete configuration file: every section and key,
// indented with two spaces, ending with a newline.
func (c *Config) JSON() ([]byte, error) {
	n := c.clone()
	if n.RehabRTC.APIKeys == nil {
		n.RehabRTC.APIKeys = []string{}
	}
	if n.RehabRTC.ICEServers == nil {
		n.RehabRTC.ICEServers = []ICEServer{}
	}
	if n.RehabRTC.Gateway.Hosts == nil {
		n.RehabRTC.Gateway.Hosts = []string{}
	}
	if n.RehabRTC.TURN.AllowPeers == nil {
		n.RehabRTC.TURN.AllowPeers = []string{}
	}
	if n.RehabRTC.SFU.NAT1To1IPs == nil {
		n.RehabRTC.SFU.NAT1To1IPs = []string{}
	}
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// redacted replaces secrets in Redacted copies.
const redacted = "<redacted>"

// Redacted returns a copy safe to log: Redis.password, each API key and each
// ICE server credential (and the cluster's Redis password) are replaced by "<redacted>" when set.
func (c *Config) Redacted() *Config {
	n := c.clone()
	if n.Redis.Password != "" {
		n.Redis.Password = redacted
	}
	if n.RehabRTC.Cluster.Redis.Password != "" {
		n.RehabRTC.Cluster.Redis.Password = redacted
	}
	for i := range n.RehabRTC.APIKeys {
		n.RehabRTC.APIKeys[i] = redacted
	}
	for i := range n.RehabRTC.ICEServers {
		if n.RehabRTC.ICEServers[i].Credential != "" {
			n.RehabRTC.ICEServers[i].Credential = redacted
		}
	}
	if n.RehabRTC.TURN.External.Secret != "" {
		n.RehabRTC.TURN.External.Secret = redacted
	}
	return n
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	n := *c
	n.RehabRTC.APIKeys = slices.Clone(c.RehabRTC.APIKeys)
	n.RehabRTC.ICEServers = slices.Clone(c.RehabRTC.ICEServers)
	n.RehabRTC.Gateway.Hosts = slices.Clone(c.RehabRTC.Gateway.Hosts)
	n.RehabRTC.Cluster.Redis.Addrs = slices.Clone(c.RehabRTC.Cluster.Redis.Addrs)
	n.RehabRTC.SFU.NAT1To1IPs = slices.Clone(c.RehabRTC.SFU.NAT1To1IPs)
	for i, s := range n.RehabRTC.ICEServers {
		n.RehabRTC.ICEServers[i].URLs = slices.Clone(s.URLs)
	}
	n.RehabRTC.TURN.AllowPeers = slices.Clone(c.RehabRTC.TURN.AllowPeers)
	n.RehabRTC.TURN.External.URLs = slices.Clone(c.RehabRTC.TURN.External.URLs)
	return &n
}
