package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// The network-namespace scaffolding of the tests that need root (TestSeparatedNetworks,
// TestSFULossRecoveredByNACK, TestClusterPartition): namespaces named after the test's kind and
// the pid, removed when the test ends (also on failure), with the commands, processes and
// clients that run in them.

// netns is the namespaces one test makes.
type netns struct {
	t  *testing.T
	id string // prefix of every namespace and device name: kind + pid
}

// newNetns checks for root and for tools (fails in CI, skips elsewhere: testutil.Missing), and
// names the test's namespaces prefix<pid>-….
func newNetns(t *testing.T, prefix string, tools ...string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Missing(t, "network namespaces need root: not running as root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testutil.Missing(t, tool+" unavailable: "+err.Error())
		}
	}
	return &netns{t: t, id: fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)}
}

// add makes the namespace id-name with its loopback up, removed when the test ends (its veths
// go with it), and returns its name.
func (n *netns) add(name string) string {
	n.t.Helper()
	ns := n.id + "-" + name
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		testutil.Missing(n.t, fmt.Sprintf("cannot create network namespaces: %v: %s", err, out))
	}
	n.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	n.run("ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// run runs a command, failing the test on error.
func (n *netns) run(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// nft loads rules (nft -f syntax) into namespace ns.
func (n *netns) nft(ns, rules string) {
	n.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("nft in %s: %v\n%s", ns, err, out)
	}
}

// spoke is one client namespace of a star: a veth from svcDev (in the service namespace) to
// dev (in ns).
type spoke struct{ ns, svcDev, dev string }

// star wires each spoke to the service namespace svc, which holds host on its loopback: spoke
// i is 10.<subnet>.<i+1>.2/24, svc's end 10.<subnet>.<i+1>.1, and the spoke's only route
// beyond its link is to host, so spokes cannot reach each other.
func (n *netns) star(svc, host string, subnet int, spokes ...spoke) {
	n.t.Helper()
	n.run("ip", "-n", svc, "addr", "add", host+"/32", "dev", "lo")
	for i, s := range spokes {
		n.run("ip", "link", "add", s.svcDev, "netns", svc, "type", "veth", "peer", "name", s.dev, "netns", s.ns)
		n.run("ip", "-n", svc, "addr", "add", fmt.Sprintf("10.%d.%d.1/24", subnet, i+1), "dev", s.svcDev)
		n.run("ip", "-n", s.ns, "addr", "add", fmt.Sprintf("10.%d.%d.2/24", subnet, i+1), "dev", s.dev)
		n.run("ip", "-n", svc, "link", "set", s.svcDev, "up")
		n.run("ip", "-n", s.ns, "link", "set", s.dev, "up")
		n.run("ip", "-n", s.ns, "route", "add", host+"/32", "via", fmt.Sprintf("10.%d.%d.1", subnet, i+1))
	}
}

// process runs args in namespace ns until the test ends, when it gets stop (and dies with the
// test process in any case); its output goes to the returned buffer, logged if the test failed.
func (n *netns) process(name, ns string, stop os.Signal, args ...string) (*testutil.Buffer, <-chan struct{}) {
	n.t.Helper()
	out := &testutil.Buffer{}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.t.Cleanup(func() {
		cmd.Process.Signal(stop)
		<-exited
		if n.t.Failed() {
			n.t.Logf("%s output:\n%s", name, out)
		}
	})
	return out, exited
}

// nsAPI is where a namespaced rehabrtc serves its API: 127.0.0.1:4070 in its own namespace.
const nsAPI = "http://127.0.0.1:4070"

// serve runs `rehabrtc serve` in namespace ns until the test ends (stop then), with the WebRTC
// and RehabRTC sections given (a data directory of its own and the tests' API key are added),
// and returns once its /healthz answers; api is an HTTP client from ns, for nsAPI.
func (n *netns) serve(name, ns string, stop os.Signal, webRTC, rehabRTC map[string]any) (api *http.Client, out *testutil.Buffer, exited <-chan struct{}) {
	n.t.Helper()
	buildBinary(n.t)
	dir := n.t.TempDir()
	rehabRTC["data_dir"], rehabRTC["api_keys"] = dir, []string{apiKey}
	b, _ := json.Marshal(map[string]any{
		"Service":  map[string]any{"name": "VideoRehabService", "hostname": "127.0.0.1", "port": 4070},
		"WebRTC":   webRTC,
		"RehabRTC": rehabRTC,
	})
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		n.t.Fatal(err)
	}
	api = httpClient(ns, nil)
	out, exited = n.process(name, ns, stop, binary, "serve", "--config", path)
	testutil.Eventually(n.t, 15*time.Second, func() error {
		select {
		case <-exited:
			n.t.Fatalf("%s exited at start:\n%s", name, out)
		default:
		}
		res, err := api.Get(nsAPI + "/healthz")
		if err != nil {
			return err
		}
		res.Body.Close()
		return testutil.Until(res.StatusCode == 200, "healthz: HTTP %d", res.StatusCode)
	})
	return api, out, exited
}

// startSessionVia starts a session of the therapist and the given patients through the API of
// a namespaced rehabrtc.
func startSessionVia(t *testing.T, api *http.Client, patients ...string) Session {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"session_manage": map[string]any{"action": "start", "id_session": 0,
		"session_users": []string{therapistUUID}, "session_participants": patients, "session_devices": []string{},
		"session_creator_user_uuid": therapistUUID}})
	req, _ := http.NewRequest("POST", nsAPI+"/api/sessions/manager", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct{ Session Session }
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 200 {
		t.Fatalf("session start: HTTP %d %v", res.StatusCode, err)
	}
	return r.Session
}

// inNetns runs fn on an OS thread moved into namespace ns. Sockets made
// by fn stay in ns afterwards, whichever goroutine uses them.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return err // the thread stays locked and ends with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// dialFrom dials from namespace ns.
func dialFrom(ns string, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNetns(ns, func() (err error) {
			c, err = (&net.Dialer{Timeout: timeout}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// httpClient dials from namespace ns.
func httpClient(ns string, roots *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialFrom(ns, 5*time.Second), TLSClientConfig: roots}}
}
