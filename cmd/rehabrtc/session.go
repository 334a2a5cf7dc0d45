package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

const sessionUsage = `Usage:
  rehabrtc session start  [--participant U]... [--user U]... [--device U]... [--creator U] [--name N]
  rehabrtc session stop   ID
  rehabrtc session invite ID [--participant U]... [--user U]... [--device U]...
  rehabrtc session remove ID [--participant U]... [--user U]... [--device U]...
  rehabrtc session list   [--running]
  rehabrtc session show   ID
  rehabrtc session forget ID    delete the names kept for a stopped session (docs/security.md)

Common flags (before or after the arguments):
  --config FILE    find the service address and data directory there (default: embedded defaults)
  --server URL     the service (default http://<Service.hostname>:<Service.port>)
  --key-file FILE  API key file (default <data_dir>/api-key); or set REHABRTC_API_KEY
  --json           print the raw JSON reply
`

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type sessionOpts struct {
	config, server, keyFile, name, creator string
	users, participants, devices           listFlag
	json, running                          bool
}

func sessionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, sessionUsage)
		if len(args) == 0 {
			return errors.New("session: missing subcommand")
		}
		return errUsageShown
	}
	sub := args[0]
	var o sessionOpts
	fs := flag.NewFlagSet("session "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionUsage) }
	fs.StringVar(&o.config, "config", "", "configuration file")
	fs.StringVar(&o.server, "server", "", "service URL")
	fs.StringVar(&o.keyFile, "key-file", "", "API key file")
	fs.StringVar(&o.name, "name", "", "session name")
	fs.StringVar(&o.creator, "creator", "", "creator user uuid")
	fs.Var(&o.users, "user", "user (therapist) uuid; repeatable")
	fs.Var(&o.participants, "participant", "participant (patient) uuid; repeatable")
	fs.Var(&o.devices, "device", "device uuid; repeatable")
	fs.BoolVar(&o.json, "json", false, "print the raw JSON reply")
	fs.BoolVar(&o.running, "running", false, "list only running sessions")
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return flagErr(err)
	}
	c, err := newClient(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return c.do(ctx, sub, rest, o, stdout)
}

// parseInterspersed lets flags come after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

type client struct {
	base string
	key  string
}

func newClient(o sessionOpts) (*client, error) {
	cfg, err := config.Load(o.config)
	if err != nil {
		return nil, err
	}
	base := o.server
	if base == "" {
		base = "http://" + cfg.ServiceAddr()
	}
	key := os.Getenv("REHABRTC_API_KEY")
	if key == "" {
		path := o.keyFile
		if path == "" && len(cfg.RehabRTC.APIKeys) > 0 {
			key = cfg.RehabRTC.APIKeys[0]
		} else {
			if path == "" {
				path = filepath.Join(cfg.RehabRTC.DataDir, apiKeyFile)
			}
			if key, err = readKeyFile(path); err != nil {
				return nil, fmt.Errorf("API key: %w (start the service once, or pass --key-file or REHABRTC_API_KEY)", err)
			}
		}
	}
	return &client{base: strings.TrimRight(base, "/"), key: key}, nil
}

func (c *client) do(ctx context.Context, sub string, args []string, o sessionOpts, out io.Writer) error {
	switch sub {
	case "start":
		return c.manage(ctx, out, o, manageBody("start", 0, o))
	case "stop", "invite", "remove":
		id, err := oneID(sub, args)
		if err != nil {
			return err
		}
		return c.manage(ctx, out, o, manageBody(sub, id, o))
	case "list":
		q := ""
		if o.running {
			q = "?status=running"
		}
		return c.show(ctx, out, o, "/api/sessions"+q)
	case "show":
		id, err := oneID(sub, args)
		if err != nil {
			return err
		}
		return c.show(ctx, out, o, "/api/sessions/"+strconv.FormatInt(id, 10))
	case "forget":
		id, err := oneID(sub, args)
		if err != nil {
			return err
		}
		return c.forget(ctx, out, o, id)
	}
	return fmt.Errorf("session: unknown subcommand %q (want start, stop, invite, remove, list, show or forget)", sub)
}

func oneID(sub string, args []string) (int64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("session %s: want exactly one session id", sub)
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("session %s: %q is not a session id", sub, args[0])
	}
	return id, nil
}

func manageBody(action string, id int64, o sessionOpts) map[string]any {
	m := map[string]any{"action": action, "id_session": id}
	if action != "stop" {
		m["session_users"] = nonNil(o.users)
		m["session_participants"] = nonNil(o.participants)
		m["session_devices"] = nonNil(o.devices)
	}
	if action == "start" {
		if o.name != "" {
			m["session_name"] = o.name
		}
		if o.creator != "" {
			m["session_creator_user_uuid"] = o.creator
		}
	}
	return map[string]any{"session_manage": m}
}

func nonNil(l listFlag) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (c *client) manage(ctx context.Context, out io.Writer, o sessionOpts, body any) error {
	b, _ := json.Marshal(body)
	raw, err := c.call(ctx, http.MethodPost, "/api/sessions/manager", b)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	var reply struct {
		Status    string        `json:"status"`
		ErrorText string        `json:"error_text"`
		Session   *session.View `json:"session"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("unexpected reply: %w", err)
	}
	if reply.Status == "error" {
		return errors.New(reply.ErrorText)
	}
	fmt.Fprintf(out, "%s\n", reply.Status)
	if reply.Session != nil {
		printSession(out, reply.Session)
	}
	return nil
}

func (c *client) show(ctx context.Context, out io.Writer, o sessionOpts, path string) error {
	raw, err := c.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if o.json || !strings.HasPrefix(path, "/api/sessions?") && path != "/api/sessions" {
		if o.json {
			return printJSON(out, raw)
		}
		var v session.View
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("unexpected reply: %w", err)
		}
		printSession(out, &v)
		return nil
	}
	var list struct {
		Sessions []session.View `json:"sessions"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("unexpected reply: %w", err)
	}
	for _, v := range list.Sessions {
		fmt.Fprintf(out, "%d\t%s\t%s\t%s\n", v.ID, v.Status, v.UUID, v.Name)
	}
	return nil
}

// forget deletes the personal data of a stopped session.
func (c *client) forget(ctx context.Context, out io.Writer, o sessionOpts, id int64) error {
	raw, err := c.call(ctx, http.MethodDelete, "/api/sessions/"+strconv.FormatInt(id, 10)+"/personal-data", nil)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(out, raw)
	}
	var v session.View
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("unexpected reply: %w", err)
	}
	fmt.Fprintln(out, "personal data deleted")
	printSession(out, &v)
	return nil
}

// call sends one request and returns the body of a 2xx reply; anything
// else becomes one clear error line.
func (c *client) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the service at %s (is `rehabrtc serve` running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Text string `json:"error_text"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Text != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", e.Text, resp.StatusCode)
		}
		return nil, fmt.Errorf("HTTP %d from %s", resp.StatusCode, path)
	}
	return raw, nil
}

func printJSON(out io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := out.Write(buf.Bytes())
	return err
}

// printSession writes a session for people: one line, then its links and
// who is connected.
func printSession(out io.Writer, v *session.View) {
	fmt.Fprintf(out, "session %d %q (%s), uuid %s", v.ID, v.Name, v.Status, v.UUID)
	if v.Port != 0 {
		fmt.Fprintf(out, ", port %d", v.Port)
	}
	fmt.Fprintf(out, ", duration %ds\n", v.Duration)
	for _, inv := range v.Invitations {
		fmt.Fprintf(out, "  %-11s %s  %s\n", inv.Kind, inv.UUID, inv.URL)
	}
	for _, p := range v.Peers {
		fmt.Fprintf(out, "  connected: %s (%s %s)\n", p.Name, p.Role, p.UUID)
	}
}
