package childproc

import (
	"os"
	"testing"
)

func TestProgramFor(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, exe, script string
		want              Program
	}{
		{"this binary", "rehabrtc", "", Program{self, "signal", Native}},
		{"this binary, script given", "rehabrtc", "signal", Program{self, "signal", Native}},
		{"another rehabrtc", "/opt/rehabrtc", "signal", Program{"/opt/rehabrtc", "signal", Native}},
		{"rehabrtc by path", "/usr/bin/rehabrtc", "", Program{"/usr/bin/rehabrtc", "signal", Native}},
		{"OpenTera's EasyRTC", "node", "server.js", Program{"node", "server.js", EasyRTC}},
		{"EasyRTC without script", "/usr/bin/node", "", Program{"/usr/bin/node", "", EasyRTC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProgramFor(tc.exe, tc.script)
			if err != nil || got != tc.want {
				t.Fatalf("ProgramFor(%q, %q) = %+v, %v; want %+v", tc.exe, tc.script, got, err, tc.want)
			}
		})
	}
}
