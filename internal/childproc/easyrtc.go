package childproc

import (
	_ "embed"
	"os"
)

// The environment of an EasyRTC child, read and deleted by the preload
// before server.js runs. /proc/<pid>/environ is readable only by the
// service's own user, unlike /proc/<pid>/cmdline.
const (
	// envEasyRTCKey is the child's internal key, appended to server.js's
	// argv as --key inside the process. Nobody is given this key: the
	// preload checks each page request's own key with the parent and
	// rewrites it to this one, so server.js's single-key check passes only
	// for admitted requests, even for paths the preload does not know.
	envEasyRTCKey = "REHABRTC_EASYRTC_KEY"
	// envBind is the address server.js's listen() is bound to (OpenTera's
	// listens on every interface).
	envBind = "REHABRTC_BIND"
)

//go:embed preload.cjs
var preloadJS []byte

// writePreload writes the preload to a new private file for node
// --require; the caller removes it once the child is ready or has failed.
func writePreload() (string, error) {
	f, err := os.CreateTemp("", "rehabrtc-easyrtc-*.cjs") // mode 0600, unpredictable name
	if err != nil {
		return "", err
	}
	_, err = f.Write(preloadJS)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
