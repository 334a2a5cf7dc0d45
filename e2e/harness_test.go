// Package e2e runs the real rehabrtc binary and drives its pages in headless Chromium with fake
// camera and microphone. The tests skip only when no Chromium is installed.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

const apiKey = "e2e-api-key-0123456789abcdef0123456789abcdef"

var (
	root        string // the module root
	binary      string // where the rehabrtc binary is built, once, by the first test that needs it
	buildOnce   sync.Once
	buildErr    error
	browserOnce sync.Once
	browserErr  error
	browserCtx  context.Context // the one shared Chromium (started on first use); nil when none is installed
	chromePath  string
	artifacts   string // e2e/artifacts
)

func findChromium() string {
	if p, err := exec.LookPath(os.Getenv("CHROMIUM")); err == nil && os.Getenv("CHROMIUM") != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "rehabrtc-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	chromePath = findChromium()
	if chromePath == "" {
		return m.Run() // every test skips
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		fmt.Fprintln(os.Stderr, "e2e: cannot find the module root:", err)
		return 1
	}
	root = filepath.Dir(strings.TrimSpace(string(gomod)))
	artifacts = filepath.Join(root, "e2e", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(tmp, "rehabrtc")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromePath),
		chromedp.UserDataDir(filepath.Join(tmp, "chromium")),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		// Three fake cameras: fake_device_0 (I420), _1 (Y16, a depth camera that sends no picture), _2 (MJPEG).
		chromedp.Flag("use-fake-device-for-media-stream", "device-count=3"),
		// The machine may have no network at all: nothing may try to reach the Internet.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		// Tests serve HTTPS and TURN over TLS with certificates they make themselves.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	browserCtx = ctx // started by the first test that needs it
	return m.Run()
}

// needBrowser skips the test when no Chromium is installed (fails instead when
// $REHABRTC_REQUIRE_EXTERNAL is set, as in CI), and starts the shared browser on first use.
func needBrowser(t *testing.T) {
	t.Helper()
	if browserCtx == nil {
		msg := "no Chromium found (looked for $CHROMIUM, chromium, chromium-browser, google-chrome): install Debian's chromium to run the browser tests"
		testutil.Missing(t, msg)
	}
	browserOnce.Do(func() {
		// The first Do starts the browser; it must not have a deadline (it would end the browser).
		if err := chromedp.Do(browserCtx); err != nil {
			browserErr = fmt.Errorf("starting %s: %w", chromePath, err)
		}
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
}

// page is one browser tab, in its own browser context (separate storage, like another computer).
type page struct {
	t      *testing.T
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // the console reader has stopped
	mu     sync.Mutex
	errors []string
}

// openPage opens url in a new isolated browser context with a 1280×800 viewport. Uncaught
// exceptions and console.error calls of the page fail the test.
func openPage(t *testing.T, name, url string, blocked ...string) *page {
	t.Helper()
	return openPageWith(t, name, url, pageSetup{blocked: blocked})
}

// pageSetup is how a page is prepared before it loads.
type pageSetup struct {
	blocked []string // devices the person refused: "camera", "microphone"
	phone   bool     // a 390×844 phone viewport with touch emulation instead of 1280×800
	script  string   // run in the page before its own scripts (a browser trait a test plays)
}

// openPageWith is openPage with a setup.
func openPageWith(t *testing.T, name, url string, setup pageSetup) *page {
	t.Helper()
	blocked := setup.blocked
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	p := &page{t: t, name: name, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	messages := chromedp.Console(ctx) // starts the tab and subscribes now, before the page loads
	go func() {
		defer close(p.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "") {
				p.addError(m.String())
			}
		}
	}()
	t.Cleanup(func() {
		p.cancel()
		<-p.done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errors {
			t.Errorf("%s page: %s", name, e)
		}
	})
	// Devices the person refused ("camera", "microphone"), as if they had clicked Block: the
	// fake-media flags grant everything, so the refusal is played in the page itself.
	if len(blocked) > 0 {
		js, _ := json.Marshal(blocked)
		_, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: `(() => {
			const blocked = new Set(` + string(js) + `);
			const md = navigator.mediaDevices, real = md.getUserMedia.bind(md);
			md.getUserMedia = (c) => ((c.video && blocked.has('camera')) || (c.audio && blocked.has('microphone')))
				? Promise.reject(new DOMException('Permission denied', 'NotAllowedError')) : real(c);
		})()`})
		if err != nil {
			t.Fatalf("%s: block %v: %v", name, blocked, err)
		}
	}
	if setup.script != "" {
		if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: setup.script}); err != nil {
			t.Fatalf("%s: setup script: %v", name, err)
		}
	}
	viewport := chromedp.EmulateViewport(1280, 800)
	if setup.phone {
		viewport = chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := p.do(20*time.Second, viewport, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: open %s: %v", name, url, err)
	}
	return p
}

func (p *page) addError(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errors = append(p.errors, s)
}

// do runs chromedp actions with a time limit.
func (p *page) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// eval evaluates expr (awaiting a promise) into a T.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS polls expr until it is true.
func (p *page) waitJS(what, expr string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := eval[bool](p, expr)
		if last = err; err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.shot("timeout")
	p.t.Fatalf("%s: %s not true within %v (last error: %v)", p.name, what, timeout, last)
}

// watch starts checking cond inside the page every 20 ms and records when it first holds, so
// that a latency is measured in the page and not through the (possibly slow) DevTools link.
func (p *page) watch(name, cond string) {
	p.t.Helper()
	p.js(fmt.Sprintf(`(() => {
		const w = (window.__watch ||= {});
		w[%[1]q] = 0;
		const iv = setInterval(() => { if (%[2]s) { w[%[1]q] = Date.now(); clearInterval(iv); } }, 20);
	})()`, name, cond))
}

// watched waits (up to timeout) for a watch to fire and returns when its condition first held.
func (p *page) watched(name string, timeout time.Duration) time.Time {
	p.t.Helper()
	p.waitJS(name, fmt.Sprintf(`window.__watch[%q] > 0`, name), timeout)
	ms, err := eval[int64](p, fmt.Sprintf(`window.__watch[%q]`, name))
	if err != nil {
		p.t.Fatal(err)
	}
	return time.UnixMilli(ms)
}

// js evaluates expr and fails the test on an error.
func (p *page) js(expr string) {
	p.t.Helper()
	if _, err := eval[chromedp.Void](p, expr); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
}

func (p *page) click(sel string) {
	p.t.Helper()
	if err := p.do(15*time.Second, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.shot("click-failed")
		p.t.Fatalf("%s: click %s: %v", p.name, sel, err)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: text of %s: %v", p.name, sel, err)
	}
	return s
}

// shot saves a screenshot under e2e/artifacts/<test>-<page>-<label>.png.
func (p *page) shot(label string) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("%s: screenshot %s: %v", p.name, label, err)
		return
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(fmt.Sprintf("%s-%s-%s.png", p.t.Name(), p.name, label))
	if err := os.WriteFile(filepath.Join(artifacts, name), buf, 0o644); err != nil {
		p.t.Log(err)
	}
}

// frames returns, per remote peer, the frames decoded from its camera so far.
func (p *page) frames() (map[string]float64, error) {
	return eval[map[string]float64](p, `window.rehab.stats().then(s => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.framesDecoded])))`)
}

// waitVideoFlowing waits until the page decodes frames from at least n remote cameras, and keeps
// decoding them.
func (p *page) waitVideoFlowing(n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var before map[string]float64
	for time.Now().Before(deadline) {
		now, err := p.frames()
		if err == nil && len(now) >= n {
			growing := 0
			for id, f := range now {
				if f > 0 && before != nil && f > before[id] {
					growing++
				}
			}
			if growing >= n {
				return
			}
		}
		before = now
		time.Sleep(500 * time.Millisecond)
	}
	p.shot("no-video")
	p.t.Fatalf("%s: video from %d peers is not flowing after %v (last: %v)", p.name, n, timeout, before)
}
