package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Scenario (a diagnostic, not a per-change test): six pages on the SFU; where the browser's CPU
// goes, by Chromium process type and thread name, and what switching off parts of the pages saves
// (painting the remote tiles, the local preview), each over the same window.
func TestSFUBrowserProfile(t *testing.T) {
	needBrowser(t)
	if os.Getenv("REHABRTC_E2E_CPU") == "" {
		t.Skip("long: set REHABRTC_E2E_CPU=1")
	}
	const n = 6
	const window = 10 * time.Second
	mode := "sfu"
	if m := os.Getenv("REHABRTC_E2E_PROFILE_MODE"); m != "" {
		mode = m
	}
	srv := startServerWith(t, func(r map[string]any) { r["media_mode"] = mode })
	var patients []string
	for i := 1; i < n; i++ {
		patients = append(patients, fmt.Sprintf("%08d-0000-4000-8000-%012d", i, i))
	}
	sess := srv.manage("start", 0, []string{therapistUUID}, patients)
	open := func(name, url string) *page { return openPageWith(t, name, url, pageSetup{script: pcCounter}) }
	pages := []*page{open("Therapist", sess.link(t, therapistUUID)+"&name=Therapist&lang=en")}
	for i, uuid := range patients {
		pages = append(pages, open("P"+strconv.Itoa(i+1), sess.link(t, uuid)+"&name=P"+strconv.Itoa(i+1)+"&lang=en"))
	}
	allDecoding(t, pages, n-1, 180*time.Second)
	time.Sleep(3 * time.Second)
	const countPainted = `(() => { window.__painted = {}; const gen = window.__gen = (window.__gen || 0) + 1; for (const v of document.querySelectorAll('.tile video')) {
		const k = v.closest('.tile').dataset.peer + ':' + v.videoWidth + 'x' + v.videoHeight + '@' + v.clientWidth + 'x' + v.clientHeight;
		window.__painted[k] = 0; const f = () => { if (window.__gen !== gen) return; window.__painted[k]++; v.requestVideoFrameCallback(f); }; v.requestVideoFrameCallback(f); } })()`
	const qRate = `Promise.all((window.__pcs || []).filter(pc => pc.connectionState !== 'closed').flatMap(pc => pc.getSenders()).map(s => {
		const p = s.getParameters(); let ch = false;
		for (const e of p.encodings || []) if (e.rid === 'q') { e.maxFramerate = %d; ch = true; }
		return ch ? s.setParameters(p) : null; }))`
	const previewRate = `(async () => { const v = document.querySelector('.tile.local video'); const c = v.srcObject.getVideoTracks()[0].clone();
		const st = c.getSettings(); await c.applyConstraints({width: st.width, height: st.height, frameRate: {max: %d}}); v.srcObject = new MediaStream([c]); })()`
	css := `(() => { const st = document.createElement('style'); st.textContent = %q; document.head.append(st); })()`
	steps := []struct{ name, js string }{
		{"baseline", ``},
		{"remote videos 64x36 px", fmt.Sprintf(css, `.tile.remote video { width: 64px !important; height: 36px !important; }`)},
		{"remote videos back, object-fit fill, no tile bar, no actions", fmt.Sprintf(css, `.tile.remote video { width: 100% !important; height: 100% !important; object-fit: fill !important; } .tile-bar, .tile-actions { display: none !important; }`)},
		{"and no container-type, no radius, no border", fmt.Sprintf(css, `.tile { container-type: normal !important; border-radius: 0 !important; border: none !important; overflow: visible !important; }`)},
		{"all videos display:none", `document.querySelectorAll('.tile video').forEach(v => v.style.display = 'none')`},
	}
	for _, s := range steps {
		for _, p := range pages {
			if s.js != "" {
				p.js(s.js)
			}
			p.js(countPainted)
		}
		time.Sleep(time.Second)
		th0 := browserCPUByThread(t)
		time.Sleep(window)
		th1 := browserCPUByThread(t)
		var total time.Duration
		type kv struct {
			k string
			d time.Duration
		}
		var rows []kv
		for k, d := range th1 {
			d -= th0[k]
			total += d
			if d > 0 {
				rows = append(rows, kv{k, d})
			}
		}
		slices.SortFunc(rows, func(a, b kv) int { return int(b.d - a.d) })
		var parts []string
		for i, r := range rows {
			if i == 10 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %.2fs", r.k, r.d.Seconds()))
		}
		painted, _ := eval[map[string]float64](pages[0], `window.__painted`)
		out, _ := eval[any](pages[1], `Promise.all((window.__pcs || []).filter(pc => pc.connectionState !== 'closed').map(pc => pc.getStats())).then(rs => rs.flatMap(r => [...r.values()]).filter(s => s.type === 'outbound-rtp' && s.kind === 'video').map(s => [s.rid, s.frameWidth, s.framesPerSecond, s.qualityLimitationReason]))`)
		t.Logf("P1 sends: %v", out)
		t.Logf("%s: %s: %.2f cores (load %s)\n  threads: %s\n  therapist painted in %v: %v", mode, s.name, total.Seconds()/window.Seconds(), loadavg(), strings.Join(parts, ", "), window, painted)
	}
	_ = chromedp.FromContext
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
