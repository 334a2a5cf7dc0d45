package childproc

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
)

// Program is what a child process runs.
type Program struct {
	Executable string
	Script     string
	Mode       Mode
}

// ProgramFor picks the children's program from OpenTera's
// WebRTC.executable and WebRTC.script (non-empty executable; empty means
// in-process sessions, no child at all):
//
//   - executable "rehabrtc" is this very binary (os.Executable), script
//     "signal" by default;
//   - script "signal" with any other executable is another rehabrtc binary,
//     and so is an executable named rehabrtc with no script;
//   - anything else is OpenTera's EasyRTC server: node server.js.
func ProgramFor(executable, script string) (Program, error) {
	p := Program{Executable: executable, Script: script, Mode: EasyRTC}
	if executable == "rehabrtc" {
		self, err := os.Executable()
		if err != nil {
			return Program{}, fmt.Errorf("WebRTC.executable: cannot find this program: %w", err)
		}
		p.Executable, p.Script = self, cmp.Or(script, "signal")
	}
	if p.Script == "signal" || (p.Script == "" && filepath.Base(p.Executable) == "rehabrtc") {
		p.Mode, p.Script = Native, "signal"
	}
	return p, nil
}
