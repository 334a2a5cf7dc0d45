package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Scenario (a profile of the six-person SFU call, docs/performance.md "Browser CPU, fourth round"):
// six pages on the SFU; the browser's CPU over the same window by thread, with every video painted,
// with the remote tiles' videos not displayed, then with no video displayed (decoding, encoding, audio
// and networking go on). The difference is what painting video frames costs.
func TestSFUBrowserProfile(t *testing.T) {
	needBrowser(t)
	if os.Getenv("REHABRTC_E2E_CPU") == "" {
		t.Skip("long: set REHABRTC_E2E_CPU=1") // a measurement, like TestSFUBrowserCPU
	}
	const n = 6
	const window = 10 * time.Second
	pages := openCall(t, "sfu", n)
	allDecoding(t, pages, n-1, 180*time.Second)
	steps := []struct{ name, js string }{
		{"every video shown", ``},
		{"remote videos not displayed", `document.querySelectorAll('.tile.remote video').forEach(v => v.style.display = 'none')`},
		{"no video displayed", `document.querySelectorAll('.tile video').forEach(v => v.style.display = 'none')`},
	}
	var cpu []time.Duration
	for _, s := range steps {
		for _, p := range pages {
			if s.js != "" {
				p.js(s.js)
			}
		}
		time.Sleep(time.Second)
		shown0, th0 := shownFrames(t, pages), browserCPUByThread(t)
		time.Sleep(window)
		shown, th := shownFrames(t, pages), browserCPUByThread(t)
		var total time.Duration
		for k, d := range th {
			total += d - th0[k]
		}
		var frames float64
		for k, v := range shown {
			frames += v - shown0[k]
		}
		cpu = append(cpu, total)
		t.Logf("%s: %.2f cores, %.0f frames shown per second in the six pages (load average %s)\n  busiest threads (s in %v): %s",
			s.name, total.Seconds()/window.Seconds(), frames/window.Seconds(), loadavg(), window, topThreads(th, th0, 16))
	}
	if cpu[2] >= cpu[0] {
		t.Errorf("CPU with no video displayed %v, with every video shown %v: painting costs nothing?", cpu[2], cpu[0])
	}
}

// loadavg is the machine's load average (1, 5 and 15 minutes).
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
