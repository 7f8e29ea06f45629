package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bake's usage errors exit 2 before anything boots.
func TestBakeUsage(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	os.WriteFile(base, make([]byte, 512), 0o644)
	out := filepath.Join(dir, "out.qcow2")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bake", "--example", "vm-test", "--base", base, "-o", out}, "one of --role and --node"},
		{[]string{"bake", "--example", "vm-test", "--role", "agent", "--node", "bai-vm", "--base", base, "-o", out}, "one of --role and --node"},
		{[]string{"bake", "--example", "vm-test", "--role", "storage", "--base", base, "-o", out}, `--role "storage": no node of the site has it (roles: all-in-one)`},
		{[]string{"bake", "--example", "vm-test", "--node", "ghost", "--base", base, "-o", out}, `--node "ghost"`},
		{[]string{"bake", "--example", "vm-test", "--role", "all-in-one", "--base", base, "-o", out, "--format", "vmdk"}, `--format "vmdk"`},
		{[]string{"bake", "--example", "vm-test", "--role", "all-in-one", "--base", base, "-o", out, "--disk-size", "big"}, `--disk-size: "big"`},
	} {
		stdout, stderr, code := bainode(t, "", tc.args...)
		if code != 2 || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("bainode %s: exit %d, want 2 with %q; got:\n%s%s", strings.Join(tc.args[1:], " "), code, tc.want, stdout, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a usage error wrote the output")
	}
}
