package testutil

import (
	"errors"
	"testing"
	"time"
)

// fakeT records a Fatalf instead of ending the test, to test failures.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f) // Fatalf must not return
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, func() error {
		n++
		return Until(n == 3, "n = %d", n)
	})
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}

	ft := &fakeT{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != ft {
				panic(r)
			}
		}()
		Eventually(ft, 30*time.Millisecond, func() error { return errors.New("never") })
	}()
	if ft.failed == "" {
		t.Fatal("Eventually did not fail on a condition never met")
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("gave up after %s, before its deadline", d)
	}
}

func TestRequireExternal(t *testing.T) {
	for _, tc := range []struct {
		ext, old, ci string
		want         bool
	}{
		{"", "", "", false},
		{"1", "", "", true},
		{"0", "", "", false},
		{"", "1", "", true}, // the old name still works
		{"", "", "true", true},
	} {
		t.Setenv(EnvRequireExternal, tc.ext)
		t.Setenv(envRequireBrowser, tc.old)
		t.Setenv("CI", tc.ci)
		if got := RequireExternal(); got != tc.want {
			t.Errorf("%+v: RequireExternal() = %v", tc, got)
		}
	}
}
