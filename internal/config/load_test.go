package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadOpenTeraFile(t *testing.T) {
	t.Parallel()
	const path = "testdata/VideoRehabService.json"

	// The fixture is OpenTera's shipped file: exactly these 18 keys and values.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]any
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	shipped := map[string]map[string]any{
		"Service": {"name": "VideoRehabService", "hostname": "127.0.0.1", "port": 4070.0, "debug_mode": false},
		"Backend": {"hostname": "127.0.0.1", "port": 40075.0},
		"Redis":   {"hostname": "127.0.0.1", "port": 6379.0, "db": 0.0, "username": "", "password": ""},
		"WebRTC": {
			"hostname": "127.0.0.1", "external_port": 40075.0, "local_base_port": 8080.0, "max_sessions": 50.0,
			"working_directory": "../../../easyrtc", "executable": "node", "script": "server.js",
		},
	}
	if !reflect.DeepEqual(file, shipped) {
		t.Fatalf("%s differs from OpenTera's shipped file:\n%v", path, file)
	}

	want := Default()
	want.Backend = Backend{Hostname: "127.0.0.1", Port: 40075, VerifyTLS: true}
	want.Redis = Redis{Hostname: "127.0.0.1", Port: 6379}
	want.WebRTC.WorkingDirectory, want.WebRTC.Executable, want.WebRTC.Script = "../../../easyrtc", "node", "server.js"
	want.RehabRTC.Gateway.Enabled = false // OpenTera's nginx holds external_port

	t.Run("as shipped", func(t *testing.T) {
		got, err := LoadEnv(path, noEnv)
		if err != nil {
			t.Fatalf("LoadEnv(%s) = %v", path, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
		if !got.RedisEnabled() || !got.BackendEnabled() {
			t.Error("Redis and Backend should be enabled")
		}
	})
	t.Run("docker variant", func(t *testing.T) {
		s := strings.Replace(string(raw), `"hostname": "127.0.0.1",
    "port": 40075`, `"hostname": "proxy",
    "port": 40075`, 1)
		s = strings.Replace(s, `"hostname": "127.0.0.1",
    "port": 6379`, `"hostname": "cache",
    "port": 6379`, 1)
		got, err := LoadEnv(writeConfig(t, s), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got.Backend.Hostname != "proxy" || got.Redis.Hostname != "cache" {
			t.Errorf("Backend.hostname = %q, Redis.hostname = %q", got.Backend.Hostname, got.Redis.Hostname)
		}
	})
}

func TestLoadNoFile(t *testing.T) {
	t.Parallel()
	got, err := LoadEnv("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("LoadEnv(\"\") = %+v, want Default()", got)
	}
	_, err = LoadEnv("", func(k string) string { return map[string]string{EnvAPIKeys: "short"}[k] })
	if err == nil || !strings.HasPrefix(err.Error(), "config: RehabRTC.api_keys[0]: ") {
		t.Errorf("err = %v, want a \"config: RehabRTC.api_keys[0]: \" error", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "RehabRTC.api_keys[0]" {
		t.Errorf("errors.As(%v, *FieldError) = %v", err, fe)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadEnv(path, noEnv)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want one naming %s and matching fs.ErrNotExist", err, path)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		content string
		want    []string // lines of the error, after "config <path>: "
	}{
		"unknown top-level key": {
			`{"Servce": {}}`,
			[]string{`unknown field "Servce"`},
		},
		"unknown key in section": {
			`{"WebRTC": {"foo": 1}}`,
			[]string{`unknown field "WebRTC.foo"`},
		},
		"unknown keys everywhere, all reported": {
			`{"x": 1, "RehabRTC": {"gateway": {"tls": "a"}, "ice_servers": [{"urls": "stun:a", "credentialType": "password"}]}}`,
			[]string{
				`unknown field "RehabRTC.gateway.tls"`,
				`unknown field "RehabRTC.ice_servers[0].credentialType"`,
				`unknown field "x"`,
			},
		},
		"key in the wrong case": {
			`{"webrtc": {"max_sessions": 5}, "Service": {"Port": 1}}`,
			[]string{
				`unknown field "Service.Port" (did you mean "port"?)`,
				`unknown field "webrtc" (did you mean "WebRTC"?)`,
			},
		},
		"string for an integer": {
			"{\n  \"Service\": {\n    \"port\": \"4070\"\n  }\n}",
			[]string{`Service.port: must be a JSON integer, got string (line 3)`},
		},
		"fraction for an integer": {
			`{"WebRTC": {"max_sessions": 1.5}}`,
			[]string{`WebRTC.max_sessions: must be a JSON integer, got number 1.5 (line 1)`},
		},
		"string for a boolean": {
			`{"RehabRTC": {"gateway": {"enabled": "yes"}}}`,
			[]string{`RehabRTC.gateway.enabled: must be a JSON boolean, got string (line 1)`},
		},
		"number in api_keys": {
			`{"RehabRTC": {"api_keys": [1]}}`,
			[]string{`RehabRTC.api_keys: must be a JSON string, got number (line 1)`},
		},
		"object for urls": {
			`{"RehabRTC": {"ice_servers": [{"urls": {}}]}}`,
			[]string{`RehabRTC.ice_servers.urls: must be a string or an array of strings, got object`},
		},
		"section is not an object": {
			`{"Redis": "localhost"}`,
			[]string{`Redis: must be a JSON object, got string (line 1)`},
		},
		"top level is an array": {
			`[]`,
			[]string{`top level: must be a JSON object, got array`},
		},
		"top level is null": {
			`null`,
			[]string{`top level: must be a JSON object, got null`},
		},
		"syntax error": {
			"{\n  \"Service\": {\n    \"port\": 4070,\n  }\n}",
			[]string{`invalid JSON at line 4, column 3: invalid character '}' looking for beginning of object key string`},
		},
		"truncated": {
			`{"Service": {`,
			[]string{`invalid JSON: unexpected end of file`},
		},
		"empty file": {
			" \n",
			[]string{`file is empty, want a JSON object`},
		},
		"trailing garbage": {
			"{}\n\n  xyz",
			[]string{`trailing data after the JSON object at line 3, column 3`},
		},
		"second object": {
			`{} {}`,
			[]string{`trailing data after the JSON object at line 1, column 4`},
		},
		// Issue 12 item 11: these passed config check before.
		"duplicate top-level key": {
			"{\n  \"Service\": {\"port\": 4070},\n  \"Service\": {\"port\": 4071}\n}",
			[]string{`Service: set more than once (again at line 3, column 11); remove all but one`},
		},
		"duplicate nested key": {
			`{"RehabRTC": {"log_level": "debug", "gateway": {"enabled": true}, "log_level": "error"}}`,
			[]string{`RehabRTC.log_level: set more than once (again at line 1, column 77); remove all but one`},
		},
		"duplicate key in a list entry": {
			`{"RehabRTC": {"ice_servers": [{"urls": "stun:a", "urls": "stun:b"}]}}`,
			[]string{`RehabRTC.ice_servers[0].urls: set more than once (again at line 1, column 55); remove all but one`},
		},
		"50 KB service name": {
			`{"Service": {"name": "` + strings.Repeat("n", 50000) + `"}}`,
			[]string{`Service.name: at most 4096 bytes (got 50000)`},
		},
		"long ICE credential": {
			`{"RehabRTC": {"ice_servers": [{"urls": "stun:a", "credential": "` + strings.Repeat("c", 5000) + `"}]}}`,
			[]string{`RehabRTC.ice_servers[0].credential: at most 4096 bytes (got 5000)`},
		},
		"too many api keys": {
			`{"RehabRTC": {"api_keys": [` + strings.TrimSuffix(strings.Repeat(`"`+strings.Repeat("k", 32)+`",`, 300), ",") + `]}}`,
			[]string{`RehabRTC.api_keys: at most 256 entries (got 300)`},
		},
		"validation errors name the field": {
			`{"WebRTC": {"max_sessions": 0, "external_port": 70000}}`,
			[]string{
				`WebRTC.external_port: must be between 1 and 65535 (got 70000)`,
				`WebRTC.max_sessions: must be between 1 and 10000 (got 0)`,
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, tt.content)
			c, err := LoadEnv(path, noEnv)
			if err == nil {
				t.Fatalf("LoadEnv = %+v, want an error", c)
			}
			want := "config " + path + ": " + strings.Join(tt.want, "\nconfig "+path+": ")
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

// A file over MaxFileBytes is refused before it is parsed (a 50 MB
// Service.name was read whole and accepted).
func TestLoadHugeFile(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `{"Service": {"name": "`+strings.Repeat("n", MaxFileBytes)+`"}}`)
	_, err := LoadEnv(path, noEnv)
	if err == nil || err.Error() != "config "+path+": file is larger than 1048576 bytes: not a configuration file" {
		t.Fatalf("error %v", err)
	}
}

// FuzzLoad: any file content loads or fails with an error naming the file
// (never a panic), and what loads renders to a file that loads the same.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{`{}`, `{"Service":{"port":1}}`, `{"Service":{},"Service":{}}`, `{"RehabRTC":{"ice_servers":[{"urls":"stun:a"}]}}`,
		"\xef\xbb\xbf{}", `[]`, `{"WebRTC":{"max_sessions":1.5}}`, `{"RehabRTC":{"gateway":{"hosts":["a","a"]}}}`} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/VideoRehabService.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadEnv(path, noEnv)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config "+path+": ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		b, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := LoadEnv(path, noEnv)
		if err != nil {
			t.Fatalf("JSON() of a loaded config does not load: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", again, c)
		}
	})
}

func TestLoadAcceptsBOMAndEmptySections(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"empty object":  `{}`,
		"empty section": `{"RehabRTC": {}}`,
		"null section":  `{"Redis": null}`,
		"UTF-8 BOM":     "\xef\xbb\xbf{}",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadEnv(writeConfig(t, content), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, Default()) {
				t.Errorf("got %+v, want Default()", got)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	key1, key2 := strings.Repeat("a", 32), strings.Repeat("b", 48)
	const file = `{"Redis": {"hostname": "cache", "port": 6379, "password": "from-file"},
		"RehabRTC": {"data_dir": "/file", "api_keys": ["` + "cccccccccccccccccccccccccccccccc" + `"]}}`
	for name, tt := range map[string]struct {
		env     map[string]string
		keys    []string
		pass    string
		dataDir string
		errs    []string // substrings of the error, if any
	}{
		"no env keeps the file": {
			keys: []string{strings.Repeat("c", 32)}, pass: "from-file", dataDir: "/file",
		},
		"all overridden": {
			env:  map[string]string{EnvAPIKeys: " " + key1 + " ,, " + key2 + ",", EnvRedisPassword: "p w", EnvDataDir: "/env"},
			keys: []string{key1, key2}, pass: "p w", dataDir: "/env",
		},
		"blank key list is ignored": {
			env:  map[string]string{EnvAPIKeys: " , "},
			keys: []string{strings.Repeat("c", 32)}, pass: "from-file", dataDir: "/file",
		},
		"turn secret from env": {
			env:  map[string]string{EnvTURNSecret: "short"},
			errs: []string{"RehabRTC.turn.external.urls: must list the servers the secret is for"},
		},
		"short key from env": {
			env:  map[string]string{EnvAPIKeys: key1 + ",tooshort"},
			errs: []string{"RehabRTC.api_keys[1]: must be at least 32 characters (got 8) (from REHABRTC_API_KEYS)"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tt.env[k] }
			c, err := LoadEnv(writeConfig(t, file), getenv)
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatal("want an error")
				}
				for _, s := range tt.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				for secret := range maps.Values(tt.env) {
					for s := range strings.SplitSeq(secret, ",") {
						if s != "" && strings.Contains(err.Error(), s) {
							t.Errorf("error %q leaks %q", err, s)
						}
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.RehabRTC.APIKeys, tt.keys) || c.Redis.Password != tt.pass || c.RehabRTC.DataDir != tt.dataDir {
				t.Errorf("api_keys %q, password %q, data_dir %q; want %q, %q, %q",
					c.RehabRTC.APIKeys, c.Redis.Password, c.RehabRTC.DataDir, tt.keys, tt.pass, tt.dataDir)
			}
		})
	}
}
