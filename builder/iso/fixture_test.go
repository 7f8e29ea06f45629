package iso

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lablup/bainode/testing/qemu"
)

//go:embed testdata/fixture.sh
var fixtureScript []byte

// fixtureTools are what testdata/fixture.sh and the checks run, with their
// Debian packages.
var fixtureTools = map[string]string{
	"xorriso":      "xorriso",
	"mkfs.vfat":    "dosfstools",
	"mcopy":        "mtools",
	"grub-mkimage": "grub-common (grub-pc-bin)",
	"md5sum":       "coreutils",
}

// fixtureInputs are the Debian files the fixtures are made of.
var fixtureInputs = []string{
	"/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/ISOLINUX/isohdpfx.bin",
	"/usr/lib/syslinux/modules/bios/ldlinux.c32",
	"/usr/lib/grub/i386-pc/boot_hybrid.img", "/usr/lib/grub/i386-pc/kernel.img",
	"/usr/lib/shim/shimx64.efi.signed", "/usr/lib/shim/mmx64.efi.signed",
	"/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
}

type fixtureSet struct {
	Focal, Jammy string // the 20.04 and 22.04+ layouts
	Probe        string
}

// needFixtures builds (once, cached by recipe hash) stand-ins of both
// Ubuntu live-server layouts whose kernel is the base image's and whose
// initrd is the probe.
func needFixtures(t *testing.T) fixtureSet {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: fixture ISOs need the VM base image")
	}
	for tool, pkg := range fixtureTools {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, fmt.Sprintf("%s not found (package %s)", tool, pkg))
		}
	}
	for _, p := range fixtureInputs {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, fmt.Sprintf("%s missing (packages isolinux syslinux-common grub-pc-bin shim-signed grub-efi-amd64-signed)", p))
		}
	}
	img := qemu.Need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	probe, err := qemu.Probe(ctx, img)
	if err != nil {
		t.Fatalf("probe initramfs: %v", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\n%s\n", len(fixtureScript), fixtureScript)
	for _, p := range append([]string{img.Kernel, probe}, fixtureInputs...) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(h, f)
		f.Close()
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	dir, err := qemu.Cached(ctx, "iso-fixture", key, func(dir string) error {
		cmd := exec.CommandContext(ctx, "sh", "-c", string(fixtureScript))
		cmd.Env = append(os.Environ(), "OUT="+dir, "KERNEL="+img.Kernel, "INITRD="+probe)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("fixture.sh: %v\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("fixture ISOs: %v", err)
	}
	return fixtureSet{Focal: filepath.Join(dir, "focal.iso"), Jammy: filepath.Join(dir, "jammy.iso"), Probe: probe}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", why)
	}
	t.Skipf("skipping: %s", why)
}
