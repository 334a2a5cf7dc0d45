package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

const storeUsage = `Usage:
  rehabrtc store check  [--config FILE] [--file DB]   verify the session store, without changing it
  rehabrtc store backup FILE [--config FILE] [--file DB] [--server URL] [--key-file FILE]
                        write a consistent copy of the store to FILE: through the running
                        service when there is one (online), else from the file itself

The store is <RehabRTC.data_dir>/rehabrtc.db (opentera.db with an OpenTera backend); --file
names another file. Restore a backup by stopping rehabrtc and putting the copy in its place.
`

// logStore says what the store held at start: a new or emptied file is
// worth a line, as sessions may be missing.
func logStore(log *slog.Logger, path string, sum boltstore.Summary) {
	switch sum.State {
	case boltstore.StateNew:
		log.Info("store created: no sessions yet", "file", path)
	case boltstore.StateEmpty:
		log.Warn("store file was empty (0 bytes): starting with no sessions; if sessions are missing, "+
			"stop rehabrtc and put a backup in its place", "file", path)
	default:
		log.Info("store opened", "file", path, "sessions", sum.Sessions)
	}
}

type storeOpts struct {
	config, file, server, keyFile string
}

func storeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, storeUsage)
		if len(args) == 0 {
			return errors.New("store: missing subcommand (check or backup)")
		}
		return errUsageShown
	}
	sub := args[0]
	var o storeOpts
	fs := flag.NewFlagSet("store "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, storeUsage) }
	fs.StringVar(&o.config, "config", "", "configuration file (to find the data directory and the service)")
	fs.StringVar(&o.file, "file", "", "store file (default: the one of the configuration)")
	fs.StringVar(&o.server, "server", "", "service URL, for an online backup")
	fs.StringVar(&o.keyFile, "key-file", "", "API key file, for an online backup")
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return flagErr(err)
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	if o.file == "" {
		o.file = storePath(cfg)
	}
	switch sub {
	case "check":
		if len(rest) != 0 {
			return errors.New("store check: takes no argument")
		}
		return storeCheck(o.file, stdout)
	case "backup":
		if len(rest) != 1 {
			return errors.New("store backup: want exactly one argument, the file to write")
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return storeBackup(ctx, o, rest[0], stdout)
	}
	return fmt.Errorf("store: unknown subcommand %q (want check or backup)", sub)
}

// storePath is the file serve opens (see opentera.Interop.DBName).
func storePath(cfg *config.Config) string {
	name := "rehabrtc.db"
	if cfg.BackendEnabled() {
		name = "opentera.db"
	}
	return filepath.Join(cfg.RehabRTC.DataDir, name)
}

func storeCheck(path string, stdout io.Writer) error {
	sum, err := boltstore.Check(path)
	if err != nil {
		return err
	}
	switch sum.State {
	case boltstore.StateNew:
		fmt.Fprintf(stdout, "store %s: no file yet (rehabrtc creates it at first start)\n", path)
	case boltstore.StateEmpty:
		fmt.Fprintf(stdout, "store %s: empty file (0 bytes): rehabrtc would start with no sessions\n", path)
	default:
		fmt.Fprintf(stdout, "store %s: OK, %d sessions, %d bytes\n", path, sum.Sessions, sum.Bytes)
	}
	return nil
}

// storeBackup writes to a temporary file next to out, checks it, then
// renames it into place: out is a sound store or is not written at all.
func storeBackup(ctx context.Context, o storeOpts, out string, stdout io.Writer) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".rehabrtc-backup-*")
	if err != nil {
		return fmt.Errorf("store backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing left to remove
	how := "online, through the running service"
	err = onlineBackup(ctx, o, tmp)
	if errors.Is(err, errNoService) { // the file is free, or says it is in use
		how = "offline, from " + o.file
		if err = truncate(tmp); err == nil {
			_, err = boltstore.Backup(o.file, tmp)
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store backup: %w", err)
	}
	sum, err := boltstore.Check(tmp.Name())
	if err != nil {
		return fmt.Errorf("store backup: the copy does not check: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil { // it holds the sessions' keys
		return fmt.Errorf("store backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("store backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup %s: %d sessions, %d bytes (%s)\n", out, sum.Sessions, sum.Bytes, how)
	return nil
}

func truncate(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// errNoService: no service answers (or there is no API key to ask it
// with); the backup is taken from the file.
var errNoService = errors.New("no running service")

// onlineBackup asks the running service for a snapshot of its store.
func onlineBackup(ctx context.Context, o storeOpts, w io.Writer) error {
	c, err := newClient(sessionOpts{config: o.config, server: o.server, keyFile: o.keyFile})
	if err != nil {
		return errNoService
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/store/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return errNoService
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the service answered %s", resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
