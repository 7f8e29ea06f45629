package iso

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/testing/qemu"
)

// needCDLoaders finds the distribution's loaders and the tools used as
// oracles on what bainode wrote.
func needCDLoaders(t *testing.T) CDLoaders {
	t.Helper()
	for tool, pkg := range map[string]string{"xorriso": "xorriso", "mcopy": "mtools", "fsck.fat": "dosfstools"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not found (package "+pkg+")")
		}
	}
	l, err := FindCDLoaders("/")
	if err != nil {
		skipOrFail(t, err.Error())
	}
	if l.MokManager == "" {
		skipOrFail(t, "mmx64.efi.signed missing (package shim-signed)")
	}
	return l
}

// TestWriteESP: dosfstools' fsck finds the image clean and mtools reads
// back every file byte for byte (the signed binaries must stay intact);
// the same inputs give the same image.
func TestWriteESP(t *testing.T) {
	l := needCDLoaders(t)
	dir := t.TempDir()
	files := []ESPFile{
		{Path: "EFI/BOOT/BOOTX64.EFI", Src: l.Shim},
		{Path: "EFI/BOOT/GRUBX64.EFI", Src: l.GRUB},
		{Path: "EFI/BOOT/MMX64.EFI", Src: l.MokManager},
		{Path: "efi/debian/x.efi", Src: l.Shim}, // lower case is folded
	}
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, p := range []string{a, b} {
		if err := WriteESP(files, p, testEpoch); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("fsck.fat", "-n", "-v", a).CombinedOutput(); err != nil || !strings.Contains(string(out), "12 bit entries") {
		t.Fatalf("fsck.fat: %v\n%s", err, out)
	}
	for _, f := range files {
		got, err := exec.Command("mcopy", "-n", "-i", a, "::/"+strings.ToUpper(f.Path), "-").Output()
		if err != nil {
			t.Fatalf("mcopy %s: %v", f.Path, err)
		}
		want, _ := os.ReadFile(f.Src)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes read back differ from %s (%d bytes)", f.Path, len(got), f.Src, len(want))
		}
	}
	if out, err := exec.Command("mdir", "-i", a, "::/EFI/BOOT").Output(); err != nil || !strings.Contains(string(out), "2024-02-20  12:00") {
		t.Errorf("mdir: timestamps are not the epoch: %v\n%s", err, out)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two ESPs from the same inputs differ")
	}
	if err := WriteESP([]ESPFile{{Path: "EFI/BOOT/LONGFILENAME.EFI", Src: l.Shim}}, a, testEpoch); err == nil {
		t.Error("a name that is not 8.3 was accepted")
	}
}

// TestWriteDeploy checks an image-mode ISO without booting it: xorriso
// agrees with the layout; the kernel arguments reach both loaders' configs
// (quoted for GRUB); the node's config is a second initrd and makes the
// ISO 0600; the ESP holds the signed binaries unchanged; the same inputs
// give the same bytes.
func TestWriteDeploy(t *testing.T) {
	l := needCDLoaders(t)
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(kernel, bytes.Repeat([]byte("k"), 5000), 0o644)
	os.WriteFile(initrd, bytes.Repeat([]byte("i"), 7000), 0o644)
	node := []byte("070701 stand-in for node.cpio")
	args := []string{"console=ttyS0,115200n8", "bainode.server=http://10.0.0.2:8080/a;b"}
	d := Deploy{Loaders: l, Kernel: kernel, Initrd: initrd, Node: node, Args: args}

	out := filepath.Join(dir, "node.iso")
	lay, err := WriteDeploy(d, out, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	checkXorrisoAgrees(t, remastered{out: out, res: AutoinstallResult{Layout: lay}})
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("ISO with a node's config: mode %v, want 0600", fi.Mode().Perm())
	}
	m, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	file := func(p string) []byte {
		t.Helper()
		for _, f := range m.Files {
			if f.Path == p {
				b, err := readRange(f.Content.Path, f.Content.Offset, f.Content.Size)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
		t.Fatalf("%s: not on the ISO", p)
		return nil
	}
	grub, isolinux := string(file("boot/grub/grub.cfg")), string(file("isolinux/isolinux.cfg"))
	if want := "\tlinux /boot/vmlinuz console=ttyS0,115200n8 'bainode.server=http://10.0.0.2:8080/a;b'\n\tinitrd /boot/initrd /boot/node.cpio\n"; !strings.Contains(grub, want) {
		t.Errorf("grub.cfg lacks %q:\n%s", want, grub)
	}
	if want := "  append initrd=/boot/initrd,/boot/node.cpio console=ttyS0,115200n8 bainode.server=http://10.0.0.2:8080/a;b\n"; !strings.Contains(isolinux, want) {
		t.Errorf("isolinux.cfg lacks %q:\n%s", want, isolinux)
	}
	if !bytes.Equal(file("boot/node.cpio"), node) {
		t.Error("boot/node.cpio differs from the node's config")
	}
	if string(file(".disk/info")) == "" {
		t.Error("no /.disk/info: the signed CD GRUB finds the medium by it")
	}
	esp := filepath.Join(dir, "esp.img")
	os.WriteFile(esp, file("boot/grub/efi.img"), 0o644)
	for name, src := range map[string]string{"BOOTX64.EFI": l.Shim, "GRUBX64.EFI": l.GRUB, "MMX64.EFI": l.MokManager} {
		got, err := exec.Command("mcopy", "-n", "-i", esp, "::/EFI/BOOT/"+name, "-").Output()
		want, _ := os.ReadFile(src)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ESP %s: not byte-identical to %s (%v)", name, src, err)
		}
	}

	// Generic: no node.cpio, 0644; twice the same bytes.
	d.Node = nil
	g1, g2 := filepath.Join(dir, "g1.iso"), filepath.Join(dir, "g2.iso")
	for _, p := range []string{g1, g2} {
		if _, err := WriteDeploy(d, p, testEpoch); err != nil {
			t.Fatal(err)
		}
	}
	if fi, _ := os.Stat(g1); fi.Mode().Perm() != 0o644 {
		t.Errorf("generic ISO: mode %v, want 0644", fi.Mode().Perm())
	}
	b1, _ := os.ReadFile(g1)
	b2, _ := os.ReadFile(g2)
	if !bytes.Equal(b1, b2) {
		t.Error("two generic ISOs from the same inputs differ")
	}
	if bytes.Contains(b1, []byte("/boot/node.cpio")) {
		t.Error("the generic ISO's configs name node.cpio")
	}
	for _, bad := range []string{"a b", "x='y'", ""} {
		d.Args = []string{bad}
		if _, err := WriteDeploy(d, g1, testEpoch); err == nil {
			t.Errorf("kernel argument %q accepted", bad)
		}
	}
}

// TestBootDeployISO boots an image-mode ISO with the probe in place of the
// deploy environment's initrd: the kernel must get the arguments as
// written, through isolinux (SeaBIOS, CD) and through the signed shim and
// GRUB on bainode's own ESP (OVMF with Secure Boot, CD), ';' included.
// SeaBIOS also boots it as a disk (the isohybrid MBR), as from a stick
// written with dd; cmd/bainode's TestVMIsoSelfContained boots OVMF from one.
func TestBootDeployISO(t *testing.T) {
	fx := needFixtures(t)
	needBootTools(t)
	l := needCDLoaders(t)
	img := qemu.Need(t)
	out := filepath.Join(t.TempDir(), "deploy.iso")
	args := []string{"console=ttyS0", "bainode.server=http://10.0.2.2:8080/x;y"}
	a := cpio.NewArchive()
	a.File("etc/bainode/deploy.json", 0o600, []byte("{}\n"))
	var node bytes.Buffer
	a.WriteTo(&node)
	if _, err := WriteDeploy(Deploy{Loaders: l, Kernel: img.Kernel, Initrd: fx.Probe, Node: node.Bytes(), Args: args}, out, testEpoch); err != nil {
		t.Fatal(err)
	}
	want := "PROBE cmdline: " // GRUB prepends BOOT_IMAGE=, isolinux does not
	for _, mode := range []bootMode{
		{name: "bios-cd", cdrom: true},
		{name: "bios-disk"}, // a stick written with dd
		{name: "uefi-sb-cd", uefi: true, secureBoot: true, cdrom: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			console := bootProbe(t, out, mode)
			line := ""
			for _, l := range strings.Split(console, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), want) {
					line = strings.TrimSpace(l)
				}
			}
			if !strings.HasSuffix(line, " "+strings.Join(args, " ")) && line != want+strings.Join(args, " ") {
				t.Errorf("kernel command line %q does not end with %q:\n%s", line, strings.Join(args, " "), tail(console, 30))
			}
			if mode.secureBoot && !strings.Contains(console, "PROBE secureboot: Secure boot enabled") {
				t.Errorf("the kernel did not report Secure Boot enabled:\n%s", tail(console, 30))
			}
		})
	}
}
