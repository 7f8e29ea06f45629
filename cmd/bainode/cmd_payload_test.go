package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPayloadCommand(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	lock := filepath.Join(dir, "none.lock")
	img := filepath.Join(dir, "payload.img")

	// vm-test carries nothing: a payload with only the manifest, and a
	// warning that the node does not use it.
	out, errs, code := bainode(t, "", "payload", "--example", "vm-test", "--cache", cache, "--lock", lock, "-o", img)
	if code != 0 || !strings.Contains(out, "0 files for 1 node(s)") ||
		!strings.Contains(errs, "payload: [1/1] manifest.json") || !strings.Contains(errs, "artifacts: online") {
		t.Fatalf("exit %d:\n%s%s", code, out, errs)
	}
	if e2fsck, err := exec.LookPath("e2fsck"); err == nil {
		if o, err := exec.Command(e2fsck, "-fn", img).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn: %v\n%s", err, o)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"payload", "--example", "vm-test"}, 2, "needs -o FILE"},
		{[]string{"payload", "--example", "vm-test", "--debs", filepath.Join(dir, "nope"), "-o", img}, 2, "--debs"},
		{[]string{"payload", "--example", "vm-test", "-o", img, "extra"}, 2, "no arguments"},
		// single-node needs Docker's .debs, the Python tarball and four
		// images: all named.
		{[]string{"payload", "--example", "single-node", "-o", img}, 1, "cpython-3.12.4+20240713-x86_64-unknown-linux-gnu-install_only.tar.gz is not in the cache"},
		{[]string{"payload", "--example", "single-node", "-o", img}, 1, "no .debs"},
		{[]string{"payload", "--example", "single-node", "-o", img}, 1, "cr.backend.ai/stable/python:3.9-ubuntu20.04"},
	} {
		args := append(tc.args, "--cache", cache, "--lock", lock)
		out, errs, code := bainode(t, "", args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("bainode %s: exit %d, want %d with %q:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out, errs)
		}
	}
	// A failed build leaves the earlier payload untouched.
	if _, err := os.Stat(img); err != nil {
		t.Errorf("the first payload is gone: %v", err)
	}
}
