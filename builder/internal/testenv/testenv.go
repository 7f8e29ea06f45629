// Package testenv holds what bainode's tests share about their environment.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run in CI, where nothing may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Need returns the path of a command the test needs. Without it the test
// fails in CI ('make test' installs it) and is skipped elsewhere.
func Need(t testing.TB, cmd string) string {
	t.Helper()
	p, err := exec.LookPath(cmd)
	if err == nil {
		return p
	}
	if CI() {
		t.Fatalf("%s is not installed; 'make test' installs it", cmd)
	}
	t.Skipf("%s is not installed (run 'make test' to install it)", cmd)
	return ""
}
