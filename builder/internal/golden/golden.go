// Package golden compares test output with reviewable files under a
// package's testdata, and rewrites them when the test runs with -update.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files instead of comparing with them")

// Updating reports whether this run rewrites golden files.
func Updating() bool { return *update }

// Check compares got with the file at path, or writes it with -update.
// A difference is reported at its first differing line, with got in full
// when it is short.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run '%s' -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		if len(got) > 4<<10 {
			t.Errorf("%s differs (go test -update rewrites it): %s", path, FirstDiff(want, got))
			return
		}
		t.Errorf("%s differs (go test -update rewrites it): %s; got:\n%s", path, FirstDiff(want, got), got)
	}
}

// FirstDiff names the first line where want and got part.
func FirstDiff(want, got []byte) string {
	w, g := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			return fmt.Sprintf("line %d: want %q, got %q", i+1, clip(wl), clip(gl))
		}
	}
	return "same lines"
}

func clip(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "..."...)
	}
	return b
}
