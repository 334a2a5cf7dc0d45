package testutil

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Tool finds an external program in PATH, or ends the test through
// Missing (skip, or fail when RequireExternal). why says what it is for.
func Tool(t testing.TB, name, why string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found in PATH: "+why)
	}
	return path
}

// NPMInstall installs dir/node_modules with `npm ci` from the committed
// lock file, unless dir/node_modules/<pkg>/package.json is already there.
func NPMInstall(t testing.TB, dir, pkg string) {
	t.Helper()
	marker := filepath.Join(dir, "node_modules", pkg, "package.json")
	if _, err := os.Stat(marker); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	npm := Tool(t, "npm", "install Node.js and npm to run the interop tests")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
