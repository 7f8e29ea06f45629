package iso

import (
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lablup/bainode/testing/qemu"
)

// TestBootKernelISO boots a kernel+initrd ISO written from scratch (the
// shape of --mode image, with the probe standing in for the deploy
// environment and a seed file standing in for image and seed).
func TestBootKernelISO(t *testing.T) {
	fx := needFixtures(t)
	needBootTools(t)
	img := qemu.Need(t)
	dir := t.TempDir()
	esp := filepath.Join(dir, "esp.img")
	script := `set -e
mkfs.vfat -C -n ESP "$1" 8192 >/dev/null
mmd -i "$1" ::/EFI ::/EFI/boot
mcopy -i "$1" /usr/lib/shim/shimx64.efi.signed ::/EFI/boot/bootx64.efi
mcopy -i "$1" /usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed ::/EFI/boot/grubx64.efi`
	if out, err := exec.Command("sh", "-c", script, "sh", esp).CombinedOutput(); err != nil {
		t.Fatalf("esp: %v\n%s", err, out)
	}
	seed := []byte("#cloud-config\nhostname: image-mode\n")
	spec, err := KernelSpec(Boot{
		Isolinux: "/usr/lib/ISOLINUX/isolinux.bin",
		Ldlinux:  "/usr/lib/syslinux/modules/bios/ldlinux.c32",
		MBRCode:  "/usr/lib/ISOLINUX/isohdpfx.bin",
		ESP:      esp,
		Kernel:   img.Kernel,
		Initrd:   fx.Probe,
		Append:   "bainode.deploy=1 ds=nocloud;s=/cdrom/nocloud/",
		Label:    "bainode deploy",
		Extra:    []File{{Path: "nocloud/user-data", Content: Content{Data: seed}}},
	}, "BAINODE_DEPLOY", testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "deploy.iso")
	if _, err := Write(spec, out); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(seed)
	wantSeed := "PROBE sha256 " + hex.EncodeToString(sum[:]) + " nocloud/user-data"
	wantArgs := regexp.MustCompile(`PROBE cmdline: .*bainode\.deploy=1 ds=nocloud;s=/cdrom/nocloud/`)
	// Two boots cover both firmwares and both media; the remaster tests
	// boot the same loaders in every combination.
	for _, mode := range []bootMode{
		{name: "bios-disk"},
		{name: "uefi-sb-cd", uefi: true, secureBoot: true, cdrom: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			console := bootProbe(t, out, mode)
			if !wantArgs.MatchString(console) || !strings.Contains(console, wantSeed) {
				t.Errorf("console lacks the command line or %q:\n%s", wantSeed, tail(console, 30))
			}
		})
	}
}
