package ehrc

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestInteropSocketIOClient runs testdata/consult.mjs, EHRC's whole
// consultation with the real socket.io-client 4.x from npm, over WebSocket
// and over HTTP long-polling. Without node (or npm) the test is skipped,
// unless CI=true or REHABRTC_REQUIRE_EXTERNAL is set, where it fails.
func TestInteropSocketIOClient(t *testing.T) {
	if testing.Short() && !testutil.RequireExternal() {
		t.Skip("interop test runs node (and npm once); skipped in -short mode")
	}
	node := testutil.Tool(t, "node", "install Node.js ≥ 18 to run the socket.io-client interop test")
	testutil.NPMInstall(t, "testdata", "socket.io-client")
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
