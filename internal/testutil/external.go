package testutil

import (
	"os"
	"testing"
)

// ExternalRequired reports whether tests must fail, not skip, when an
// external component (Chromium, Redis, coturn, root for network namespaces)
// is missing: in CI, or with REHABRTC_REQUIRE_EXTERNAL (or its older name
// REHABRTC_REQUIRE_BROWSER) set.
func ExternalRequired() bool {
	return os.Getenv("CI") != "" || os.Getenv("REHABRTC_REQUIRE_EXTERNAL") != "" || os.Getenv("REHABRTC_REQUIRE_BROWSER") != ""
}

// NeedExternal skips t because what is missing (why), or fails it when
// [ExternalRequired].
func NeedExternal(t testing.TB, what string, why error) {
	t.Helper()
	if ExternalRequired() {
		t.Fatalf("%s is required here (CI or REHABRTC_REQUIRE_EXTERNAL) but unavailable: %v", what, why)
	}
	t.Skipf("%s unavailable: %v (set REHABRTC_REQUIRE_EXTERNAL=1 to make this a failure)", what, why)
}
