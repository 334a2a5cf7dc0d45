package config

import "encoding/json"

// openTeraDefaults adjusts the defaults for a file written for OpenTera.
// A file with a Backend is an OpenTera install: OpenTera's nginx already
// holds WebRTC.external_port and routes /rehab/, /webrtc/<port>/ and
// /websocket/<port>/ to the service and the session ports, so rehabrtc's
// own gateway is off unless the file says RehabRTC.gateway.enabled. This
// is what lets OpenTera's VideoRehabService.json serve unchanged.
func openTeraDefaults(c *Config, data []byte) {
	if c.BackendEnabled() && !hasKey(data, "RehabRTC", "gateway", "enabled") {
		c.RehabRTC.Gateway.Enabled = false
	}
}

// hasKey reports whether the JSON object data has the nested key path.
func hasKey(data []byte, path ...string) bool {
	for _, k := range path {
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return false
		}
		v, ok := obj[k]
		if !ok {
			return false
		}
		data = v
	}
	return true
}
