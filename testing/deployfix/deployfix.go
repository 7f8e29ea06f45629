// Package deployfix builds the fixtures of image-deploy VM tests once and
// shares them: the VM test base as a role image (raw.zst and its bake
// manifest), and the deploy environment (the base's kernel, busybox and a
// static bainode as the agent).
package deployfix

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/pxe"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/qemu"
)

// ImageName is the file name of Image's raw.zst.
const ImageName = "base.raw.zst"

// Image is the VM test base as a role image: raw.zst with a bake manifest,
// cached by the base's recipe (a file lock keeps parallel test binaries
// from building it twice). A full bake would add minutes; the deploy path
// is the same for any raw.zst with a manifest. Its ESP boots through
// Debian's signed shim and GRUB (signedESP), so one image serves BIOS,
// UEFI and Secure Boot tests.
func Image(t testing.TB, img qemu.Image) string {
	t.Helper()
	for _, tool := range []string{"qemu-img", "zstd", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to make the test image", tool)
		}
	}
	dir, err := qemu.Cached(t.Context(), "deploy-image", qemu.RecipeHash()+"-signed-esp", func(dir string) error {
		return build(dir, img)
	})
	if err != nil {
		t.Fatalf("deploy test image: %v", err)
	}
	return filepath.Join(dir, ImageName)
}

func build(dir string, img qemu.Image) error {
	raw, zst := filepath.Join(dir, "base.raw"), filepath.Join(dir, ImageName)
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", "-S", "4k", img.Disk, raw).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert: %v\n%s", err, out)
	}
	if err := signedESP(raw, img.Append); err != nil {
		return err
	}
	if out, err := exec.Command("zstd", "-q", "-T0", "-3", raw, "-o", zst).CombinedOutput(); err != nil {
		return fmt.Errorf("zstd: %v\n%s", err, out)
	}
	if err := os.Remove(raw); err != nil {
		return err
	}
	f, err := os.Open(zst)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	m, _ := json.MarshalIndent(bake.Manifest{Version: 1, Format: bake.FormatRawZst, Created: time.Now().UTC().Format(time.RFC3339),
		Output: bake.FileSum{Path: ImageName, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}}, "", "  ")
	return os.WriteFile(bake.ManifestPath(zst), m, 0o644)
}

// signedESP puts Debian's signed shim (EFI/BOOT/BOOTX64.EFI, the removable
// path) and signed GRUB (grubx64.efi beside it, where shim looks) on the
// ESP of the raw disk, in place of the base's unsigned GRUB, with a
// grub.cfg that boots the root file system's /vmlinuz with appendLine.
// Signed GRUB reads $prefix/grub.cfg (/EFI/debian) or else the one beside
// itself; both are written.
func signedESP(raw, appendLine string) error {
	loaders, err := pxe.FindLoaders("/")
	if err != nil {
		return fmt.Errorf("signed boot loaders: %w", err)
	}
	grub := filepath.Join(filepath.Dir(loaders.GRUB), "grubx64.efi.signed") // the disk GRUB of grub-efi-amd64-signed
	var uuid string
	for _, f := range strings.Fields(appendLine) {
		if v, ok := strings.CutPrefix(f, "root=UUID="); ok {
			uuid = v
		}
	}
	if uuid == "" {
		return fmt.Errorf("the base's command line %q names no root=UUID=", appendLine)
	}
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	mbr := make([]byte, 512)
	_, err = f.ReadAt(mbr, 0)
	f.Close()
	if err != nil {
		return err
	}
	var start uint32
	for i := 0; i < 4; i++ {
		if e := mbr[446+16*i:]; e[4] == 0xef {
			start = uint32(e[8]) | uint32(e[9])<<8 | uint32(e[10])<<16 | uint32(e[11])<<24
		}
	}
	if start == 0 {
		return fmt.Errorf("the base disk has no EFI system partition")
	}
	cfg := filepath.Join(filepath.Dir(raw), "grub.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("search --no-floppy --fs-uuid --set=root %s\nlinux /vmlinuz %s\ninitrd /initrd.img\nboot\n", uuid, appendLine)), 0o644); err != nil {
		return err
	}
	defer os.Remove(cfg)
	img := fmt.Sprintf("%s@@%d", raw, int64(start)*512)
	for _, args := range [][]string{
		{"mcopy", "-o", "-i", img, loaders.Shim, "::/EFI/BOOT/BOOTX64.EFI"},
		{"mcopy", "-o", "-i", img, grub, "::/EFI/BOOT/grubx64.efi"},
		{"mcopy", "-o", "-i", img, cfg, "::/EFI/BOOT/grub.cfg"},
		{"mmd", "-i", img, "::/EFI/debian"},
		{"mcopy", "-o", "-i", img, cfg, "::/EFI/debian/grub.cfg"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %v\n%s (package mtools)", args, err, out)
		}
	}
	return nil
}

var env struct {
	sync.Once
	dir string
	err error
}

// Env assembles the deploy environment from the base's kernel and
// initramfs (Debian's linux-image), busybox-static and a static bainode,
// once per test binary.
func Env(t testing.TB, img qemu.Image) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("busybox-static is not installed")
	}
	env.Do(func() { env.dir, env.err = assemble(t, img) })
	if env.err != nil {
		t.Fatal(env.err)
	}
	return env.dir
}

func assemble(t testing.TB, img qemu.Image) (string, error) {
	dir, err := os.MkdirTemp("", "bainode-deploy-env-")
	if err != nil {
		return "", err
	}
	agent := filepath.Join(dir, "bainode")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", agent, "github.com/lablup/bainode/cmd/bainode")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build bainode: %v\n%s", err, out)
	}
	e, err := deploy.Assemble(deploy.EnvOptions{Kernel: img.Kernel, Modules: []string{img.Initrd}, Busybox: "/bin/busybox", Agent: agent}, dir)
	if err != nil {
		return "", err
	}
	st, _ := os.Stat(e.Initrd)
	t.Logf("deploy environment: kernel %s, %d modules, initramfs %d bytes", e.KernelVersion, len(e.Modules), st.Size())
	return dir, nil
}

// Report reads the verifier's report from a deployed node's console (the
// report's last lines may still be arriving), logs it as a table, fails
// the test on every failed check, and returns the cloud-init data source
// the node read its seed from.
func Report(t testing.TB, m *vm.Machine, total time.Duration) (datasource string) {
	t.Helper()
	rep, err := verify.Extract([]byte(m.Output()))
	if err != nil {
		time.Sleep(3 * time.Second)
		rep, err = verify.Extract([]byte(m.Output()))
	}
	if err != nil {
		t.Fatalf("verifier report: %v", err)
	}
	var table strings.Builder
	verify.WriteTable(&table, rep)
	t.Logf("verifier report after %s:\n%s", total.Round(time.Second), table.String())
	for _, c := range rep.Failures() {
		t.Errorf("check %s failed: expected %q, actual %q (%s)", c.ID, c.Expected, c.Actual, c.Detail)
	}
	for _, c := range rep.Checks {
		if c.ID == "cloudinit.datasource" {
			datasource = c.Actual
		}
	}
	return datasource
}
