package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
)

// Environment variables that override the file. Secrets belong here rather
// than in the file.
const (
	EnvAPIKeys       = "REHABRTC_API_KEYS"       // comma-separated; replaces RehabRTC.api_keys
	EnvRedisPassword = "REHABRTC_REDIS_PASSWORD" // replaces Redis.password
	EnvDataDir       = "REHABRTC_DATA_DIR"       // replaces RehabRTC.data_dir
	// EnvClusterRedisPassword replaces RehabRTC.cluster.redis.password.
	EnvClusterRedisPassword = "REHABRTC_CLUSTER_REDIS_PASSWORD"
	EnvTURNSecret           = "REHABRTC_TURN_SECRET" // replaces RehabRTC.turn.external.secret
	// A cluster node's own settings, so that every node can read one file.
	EnvClusterNodeID       = "REHABRTC_CLUSTER_NODE_ID"       // replaces RehabRTC.cluster.node_id
	EnvClusterInternalAddr = "REHABRTC_CLUSTER_INTERNAL_ADDR" // replaces RehabRTC.cluster.internal_addr
	EnvClusterPublicHost   = "REHABRTC_CLUSTER_PUBLIC_HOST"   // replaces RehabRTC.cluster.public_host
)

// Load reads the configuration file at path (or uses Default() when path is
// ""), applies the REHABRTC_* environment variables and validates the result.
// Every error line reads "config <path>: <Section.key>: <problem>".
func Load(path string) (*Config, error) { return LoadEnv(path, os.Getenv) }

// LoadEnv is Load with the environment given as a function; nil means an
// empty environment.
func LoadEnv(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if errs := decode(data, c); len(errs) > 0 {
			return nil, prefixed(path, errs)
		}
		openTeraDefaults(c, data)
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	from := applyEnv(c, getenv)
	if errs := c.validate(); len(errs) > 0 {
		for _, err := range errs {
			var fe *FieldError
			if errors.As(err, &fe) {
				for field, env := range from {
					if fe.Field == field || strings.HasPrefix(fe.Field, field+"[") {
						fe.Msg += " (from " + env + ")"
					}
				}
			}
		}
		return nil, prefixed(path, errs)
	}
	return c, nil
}

// MaxFileBytes bounds the configuration file: the full default file is
// about 1 KiB.
const MaxFileBytes = 1 << 20

// readFile reads at most MaxFileBytes of path; a larger file is an error.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes: not a configuration file", MaxFileBytes)
	}
	return data, nil
}

// applyEnv applies the environment overrides to c and returns which fields
// came from which variable.
func applyEnv(c *Config, getenv func(string) string) map[string]string {
	from := map[string]string{}
	var keys []string
	for k := range strings.SplitSeq(getenv(EnvAPIKeys), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		c.RehabRTC.APIKeys = keys
		from["RehabRTC.api_keys"] = EnvAPIKeys
	}
	if v := getenv(EnvRedisPassword); v != "" {
		c.Redis.Password = v
		from["Redis.password"] = EnvRedisPassword
	}
	if v := getenv(EnvClusterRedisPassword); v != "" {
		c.RehabRTC.Cluster.Redis.Password = v
		from["RehabRTC.cluster.redis.password"] = EnvClusterRedisPassword
	}
	if v := getenv(EnvDataDir); v != "" {
		c.RehabRTC.DataDir = v
		from["RehabRTC.data_dir"] = EnvDataDir
	}
	if v := getenv(EnvTURNSecret); v != "" {
		c.RehabRTC.TURN.External.Secret = v
		from["RehabRTC.turn.external.secret"] = EnvTURNSecret
	}
	for _, e := range []struct {
		env, field string
		dst        *string
	}{
		{EnvClusterNodeID, "RehabRTC.cluster.node_id", &c.RehabRTC.Cluster.NodeID},
		{EnvClusterInternalAddr, "RehabRTC.cluster.internal_addr", &c.RehabRTC.Cluster.InternalAddr},
		{EnvClusterPublicHost, "RehabRTC.cluster.public_host", &c.RehabRTC.Cluster.PublicHost},
	} {
		if v := getenv(e.env); v != "" {
			*e.dst = v
			from[e.field] = e.env
		}
	}
	return from
}

func prefixed(path string, errs []error) error {
	prefix := "config"
	if path != "" {
		prefix += " " + path
	}
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = fmt.Errorf("%s: %w", prefix, err)
	}
	return errors.Join(out...)
}

// decode decodes data on top of c, strictly, and returns every problem it can
// name: syntax errors, trailing data, unknown keys (with their full path, all
// of them), and the first wrong type.
func decode(data []byte, c *Config) []error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM some editors add
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return []error{syntaxError(data, err)}
	}
	if _, ok := tree.(map[string]any); !ok {
		return []error{fmt.Errorf("top level: must be a JSON object, got %s", jsonKind(bytes.TrimSpace(data)))}
	}
	off := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		off += len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n"))
		return []error{fmt.Errorf("trailing data after the JSON object at %s", position(data, off+1))}
	}
	errs := duplicateKeys(data)
	errs = append(errs, unknownFields(reflect.TypeFor[Config](), tree, "")...)
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		errs = append(errs, typeError(data, te))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		if len(errs) == 0 { // a key unknownFields let through: report it as encoding/json does
			errs = append(errs, errors.New(strings.TrimPrefix(err.Error(), "json: ")))
		}
	default:
		errs = append(errs, err)
	}
	return errs
}

func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("file is empty, want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end of file")
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at %s: %v", position(data, int(se.Offset)), se)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

func typeError(data []byte, te *json.UnmarshalTypeError) error {
	want := "a JSON " + kindName(te.Type)
	if te.Type == reflect.TypeFor[StringList]() {
		want = "a string or an array of strings"
	}
	msg := fmt.Sprintf("must be %s, got %s", want, te.Value)
	if te.Offset > 0 { // the end of the value; unset for errors from UnmarshalJSON methods
		msg += fmt.Sprintf(" (line %d)", 1+bytes.Count(data[:min(int(te.Offset), len(data))], []byte("\n")))
	}
	if te.Field == "" {
		return fmt.Errorf("top level: %s", msg)
	}
	return &FieldError{Field: te.Field, Msg: msg}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.Kind().String()
}

// position is "line L, column C" of the byte before offset (encoding/json
// offsets point just past the offending byte).
func position(data []byte, offset int) string {
	i := min(max(offset-1, 0), len(data))
	line := 1 + bytes.Count(data[:i], []byte("\n"))
	col := i - bytes.LastIndexByte(data[:i], '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// unknownFields walks the decoded JSON tree against type t and reports every
// key that matches no field's JSON name exactly (encoding/json would accept
// a case-insensitive match; OpenTera's Python would not).
func unknownFields(t reflect.Type, v any, path string) []error {
	var errs []error
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, reported by the decoder
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "-" && name != "" {
				fields[name] = f.Type
			}
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			full := key
			if path != "" {
				full = path + "." + key
			}
			ft, ok := fields[key]
			if !ok {
				errs = append(errs, unknownField(full, key, fields))
				continue
			}
			errs = append(errs, unknownFields(ft, obj[key], full)...)
		}
	case reflect.Slice:
		arr, _ := v.([]any)
		for i, e := range arr {
			errs = append(errs, unknownFields(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return errs
}

func unknownField(full, key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Errorf("unknown field %q (did you mean %q?)", full, name)
		}
	}
	return fmt.Errorf("unknown field %q", full)
}

// duplicateKeys reports every key an object of data (valid JSON) sets more
// than once: encoding/json would silently keep the last one, so a file
// that sets log_level twice would mean something other than it says.
func duplicateKeys(data []byte) []error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var errs []error
	_ = walkKeys(dec, data, "", &errs) // valid JSON: no syntax error
	return errs
}

func walkKeys(dec *json.Decoder, data []byte, path string, errs *[]error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			full := key
			if path != "" {
				full = path + "." + key
			}
			if seen[key] {
				*errs = append(*errs, &FieldError{Field: full,
					Msg: fmt.Sprintf("set more than once (again at %s); remove all but one", position(data, int(dec.InputOffset())))})
			}
			seen[key] = true
			if err := walkKeys(dec, data, full, errs); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, data, fmt.Sprintf("%s[%d]", path, i), errs); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
