package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPXECommand writes the example cluster's tree twice: the second run
// finds the same content address, current points at it, and seeds are 0600.
func TestPXECommand(t *testing.T) {
	for _, p := range []string{"/usr/lib/PXELINUX/pxelinux.0", "/usr/lib/shim/shimx64.efi.signed", "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true: %v", err)
			}
			t.Skip(err)
		}
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"iso": "not really an ISO", "linux": "kernel", "initrd": "initrd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "pxe")
	args := []string{"pxe", "--example", "cluster", "--server", "http://10.20.30.1:8080", "--iso", filepath.Join(dir, "iso"),
		"--kernel", filepath.Join(dir, "linux"), "--initrd", filepath.Join(dir, "initrd"), "-o", out}
	stdout, stderr, code := bainode(t, "", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	stdout2, _, _ := bainode(t, "", args...)
	if stdout != stdout2 {
		t.Errorf("second run wrote another tree:\n%s\n%s", stdout, stdout2)
	}
	id, err := os.Readlink(filepath.Join(out, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "http://10.20.30.1:8080/pxe/"+id+"/") {
		t.Errorf("output %q does not name the tree URL of %s", stdout, id)
	}
	tree := filepath.Join(out, id)
	for _, p := range []string{"pxelinux.0", "ldlinux.c32", "bootx64.efi", "grubx64.efi", "grub/grub.cfg", "pxelinux.cfg/default",
		"pxelinux.cfg/01-52-54-00-20-30-10", "ipxe/boot.ipxe", "ipxe/01-52-54-00-20-30-10.ipxe", "autoinstall/linux", "autoinstall/initrd", "autoinstall/live-server.iso"} {
		if _, err := os.Stat(filepath.Join(tree, p)); err != nil {
			t.Errorf("tree: %v", err)
		}
	}
	st, err := os.Stat(filepath.Join(tree, "autoinstall/seed/bai-m1/user-data"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("seed user-data: %v %v, want 0600", st.Mode(), err)
	}
	cfg, _ := os.ReadFile(filepath.Join(tree, "grub/grub.cfg"))
	if !strings.Contains(string(cfg), "'ds=nocloud-net;s=http://10.20.30.1:8080/pxe/"+id+"/autoinstall/seed/bai-m1/' ---") {
		t.Errorf("grub.cfg has no quoted seed of this tree before ---:\n%s", cfg)
	}

	_, stderr, code = bainode(t, "", "pxe", "--example", "cluster", "--target", "debian-12", "--server", "http://h", "--iso", filepath.Join(dir, "iso"),
		"--kernel", filepath.Join(dir, "linux"), "--initrd", filepath.Join(dir, "initrd"), "-o", out)
	if code == 0 || !strings.Contains(stderr, "Ubuntu live-server") {
		t.Errorf("debian-12: exit %d, %s", code, stderr)
	}
	_, stderr, code = bainode(t, "", "pxe", "--example", "cluster", "--server", "http://h/path", "--iso", filepath.Join(dir, "iso"), "-o", out)
	if code != 2 || !strings.Contains(stderr, "--server") {
		t.Errorf("server with a path: exit %d, %s", code, stderr)
	}
}

// TestPXEImageCommand writes the example cluster's tree with the agents'
// image: the agents boot the deploy environment, the manager autoinstall.
func TestPXEImageCommand(t *testing.T) {
	for _, p := range []string{"/usr/lib/PXELINUX/pxelinux.0", "/usr/lib/shim/shimx64.efi.signed", "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true: %v", err)
			}
			t.Skip(err)
		}
	}
	dir := t.TempDir()
	img := strings.Repeat("image ", 100)
	sum := sha256.Sum256([]byte(img))
	manifest := fmt.Sprintf(`{"version":1,"format":"raw.zst","output":{"path":"agent.raw.zst","sha256":"%s","size":%d}}`, hex.EncodeToString(sum[:]), len(img))
	for name, data := range map[string]string{"iso": "not really an ISO", "linux": "kernel", "initrd": "initrd",
		"env/vmlinuz": "deploy kernel", "env/initrd.img": "deploy initrd", "agent.raw.zst": img, "agent.raw.zst.json": manifest} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "pxe")
	common := []string{"pxe", "--example", "cluster", "--server", "http://10.20.30.1:8080", "-o", out,
		"--deploy-env", filepath.Join(dir, "env"), "--deploy-kernel-args", "console=ttyS0"}
	iso := []string{"--iso", filepath.Join(dir, "iso"), "--kernel", filepath.Join(dir, "linux"), "--initrd", filepath.Join(dir, "initrd")}
	image := "agent=" + filepath.Join(dir, "agent.raw.zst")
	stdout, stderr, code := bainode(t, "", append(append(common, iso...), "--image", image)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "install mode image: bai-a01 bai-a02; run bainoded with the same --deploy-env and --image\n") {
		t.Errorf("output does not name the image-mode nodes:\n%s", stdout)
	}
	id, _ := os.Readlink(filepath.Join(out, "current"))
	tree := filepath.Join(out, id)
	if b, _ := os.ReadFile(filepath.Join(tree, "image/vmlinuz")); string(b) != "deploy kernel" {
		t.Errorf("image/vmlinuz: %q", b)
	}
	cfg, _ := os.ReadFile(filepath.Join(tree, "pxelinux.cfg/01-52-54-00-20-30-20"))
	if !strings.Contains(string(cfg), "APPEND initrd=image/initrd.img bainode.config=http://10.20.30.1:8080/deploy/52-54-00-20-30-20/node.cpio console=ttyS0 ---\n") {
		t.Errorf("agent's pxelinux config:\n%s", cfg)
	}
	cfg, _ = os.ReadFile(filepath.Join(tree, "pxelinux.cfg/01-52-54-00-20-30-10"))
	if !strings.Contains(string(cfg), "KERNEL autoinstall/linux") {
		t.Errorf("manager's pxelinux config:\n%s", cfg)
	}
	if _, err := os.Stat(filepath.Join(tree, "autoinstall/seed/bai-a01")); err == nil {
		t.Errorf("image-mode agent has an autoinstall seed")
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append(append(common, iso...), "--image", "gpu="+filepath.Join(dir, "agent.raw.zst")),
			`image for role "gpu": not a role; want one of manager, agent, storage, all-in-one`},
		{append(append(common, iso...), "--image", image, "--mode", "image"),
			"node bai-m1: install mode image, but role manager has no image (--image manager=FILE.raw.zst)"},
		{append(common, "--image", image),
			"node bai-m1 (role manager) boots install mode autoinstall, which needs the live-server ISO (--iso FILE)"},
		{append(append(common, iso...), "--image", "agent="+filepath.Join(dir, "iso")),
			"image of role agent: "},
	} {
		_, stderr, code := bainode(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s; want %q", c.args[len(common):], code, stderr, c.want)
		}
	}
}
