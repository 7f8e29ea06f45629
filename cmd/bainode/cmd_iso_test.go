package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/iso"
)

func TestISOCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.iso")
	spec := iso.Spec{
		VolumeID: "SRC",
		Files: []iso.File{
			{Path: "boot/grub/grub.cfg", Content: iso.Content{Data: []byte("menuentry x {\n\tlinux /casper/vmlinuz ---\n}\n")}},
			{Path: "boot/core.img", Content: iso.Content{Data: make([]byte, 4096)}},
			{Path: ".disk/info", Content: iso.Content{Data: []byte("x")}},
		},
		Catalog: "boot.catalog",
		Boot:    []iso.BootEntry{{Platform: iso.BIOS, Path: "boot/core.img", LoadSize: 4}},
		Epoch:   time.Unix(1700000000, 0),
	}
	if _, err := iso.Write(spec, src); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.iso")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"iso", "--base", src, "-o", out}, 2, "--node HOSTNAME or --server URL"},
		{[]string{"iso", "--base", src, "-o", out, "--node", "bai-aio", "--server", "http://x"}, 2, "pick one"},
		{[]string{"iso", "--base", src, "-o", out, "--node", "ghost"}, 2, `no node "ghost"`},
		{[]string{"iso", "--mode", "image", "--base", src, "-o", out, "--node", "bai-aio"}, 2, "--mode"},
		{[]string{"iso", "--base", filepath.Join(dir, "none.iso"), "-o", out, "--node", "bai-aio"}, 1, "no such file"},
		{[]string{"iso", "--base", src, "-o", out, "--server", "http://10.0.0.2:8080"}, 0, "BIOS: boot/core.img"},
		{[]string{"iso", "--base", src, "-o", out, "--node", "bai-aio"}, 0, "system area: none"},
	} {
		o, e, code := bainode(t, "", tc.args...)
		if code != tc.code || !strings.Contains(o+e, tc.out) {
			t.Errorf("bainode %s: exit %d, want %d; want output with %q, got:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.out, o, e)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("per-node ISO: %v, mode %v; want 0600 (it holds the node's secrets)", err, fi.Mode())
	}
	cmd := exec.Command(bainodeBin, "iso", "--base", src, "-o", out, "--server", "http://x")
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=yesterday")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v\n%s", err, b)
	}
}
