package main

import (
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
