package ehrc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestInteropSocketIOClient runs testdata/consult.mjs, EHRC's whole
// consultation with the real socket.io-client 4.x from npm, over WebSocket
// and over HTTP long-polling. Without node (or npm) the test is skipped,
// unless CI=true, where it fails.
func TestInteropSocketIOClient(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("interop test runs node (and npm once); skipped in -short mode")
	}
	node := requireTool(t, "node")
	installClient(t)
	for _, mode := range []string{"websocket", "polling"} {
		t.Run(mode, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "consult.mjs", e.srv.URL, mode, testAPIKey)
			cmd.Dir = "testdata"
			out, err := cmd.CombinedOutput()
			t.Logf("consult.mjs %s:\n%s", mode, out)
			if err != nil {
				t.Fatalf("consult.mjs %s: %v", mode, err)
			}
			waitFor(t, "everything freed", func() bool {
				nss, offices, rooms := e.counts()
				return nss == 0 && offices == 0 && rooms == 0
			})
		})
	}
}

// requireTool finds a command, or skips the test (fails it when CI=true).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not found in PATH: install Node.js ≥ 18 to run the socket.io-client interop test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// installClient installs testdata/node_modules from the committed lock
// file, unless it is already there.
func installClient(t *testing.T) {
	t.Helper()
	marker := filepath.Join("testdata", "node_modules", "socket.io-client", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	npm := requireTool(t, "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = "testdata"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in testdata: %v\n%s", err, out)
	}
}
