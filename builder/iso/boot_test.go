package iso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/vm"
)

// bootMode is one way a machine meets the medium.
type bootMode struct {
	name       string
	uefi       bool
	secureBoot bool
	cdrom      bool // as a CD (El Torito); otherwise as a disk (the dd path)
}

var bootModes = []bootMode{
	{name: "bios-cd", cdrom: true},
	{name: "bios-disk"},
	{name: "uefi-cd", uefi: true, cdrom: true},
	{name: "uefi-disk", uefi: true},
	{name: "uefi-sb-cd", uefi: true, secureBoot: true, cdrom: true},
	{name: "uefi-sb-disk", uefi: true, secureBoot: true},
}

const ovmfDir = "/usr/share/OVMF"

// TestBootRemastered boots each remastered layout in every firmware and
// medium mode with the probe initramfs as the installer's initrd: the
// console must show the autoinstall arguments before "---" as the kernel
// got them, and the seed's sha256 as read from the medium.
func TestBootRemastered(t *testing.T) {
	fx := needFixtures(t)
	needBootTools(t)
	seed := testSeed()
	sum := sha256.Sum256(seed.UserData)
	wantSeed := "PROBE sha256 " + hex.EncodeToString(sum[:]) + " nocloud/user-data"
	wantArgs := regexp.MustCompile(`PROBE cmdline: .*\bautoinstall ds=nocloud;s=/cdrom/nocloud/ ---`)

	for _, layout := range []struct{ name, src string }{{"focal", fx.Focal}, {"jammy", fx.Jammy}} {
		t.Run(layout.name, func(t *testing.T) {
			t.Parallel()
			r := remasterFixture(t, layout.src)
			for _, mode := range bootModes {
				t.Run(mode.name, func(t *testing.T) {
					t.Parallel()
					console := bootProbe(t, r.out, mode)
					if !wantArgs.MatchString(console) {
						t.Errorf("console lacks the autoinstall arguments before ---:\n%s", tail(console, 30))
					}
					if mode.secureBoot && !strings.Contains(console, "PROBE secureboot: Secure boot enabled") {
						t.Errorf("the kernel did not report Secure Boot enabled:\n%s", tail(console, 30))
					}
					if !strings.Contains(console, wantSeed) {
						t.Errorf("console lacks %q:\n%s", wantSeed, tail(console, 30))
					}
				})
			}
		})
	}
}

func needBootTools(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		skipOrFail(t, "qemu-system-x86_64 not found (package qemu-system-x86)")
	}
	for _, f := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.ms.fd", "OVMF_VARS_4M.ms.fd"} {
		if _, err := os.Stat(filepath.Join(ovmfDir, f)); err != nil {
			skipOrFail(t, ovmfDir+"/"+f+" missing (package ovmf)")
		}
	}
}

// bootProbe boots iso in mode until the probe powers off and returns the
// serial console.
func bootProbe(t *testing.T, iso string, mode bootMode) string {
	t.Helper()
	dir := t.TempDir()
	serial := filepath.Join(dir, "serial.log")
	machine := "q35"
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-accel", "tcg",
		"-m", "512", "-smp", "1", "-nic", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + serial}
	if mode.uefi {
		code, vars := "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"
		if mode.secureBoot {
			code, vars = "OVMF_CODE_4M.ms.fd", "OVMF_VARS_4M.ms.fd"
			machine += ",smm=on"
			args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		b, err := os.ReadFile(filepath.Join(ovmfDir, vars))
		if err != nil {
			t.Fatal(err)
		}
		v := filepath.Join(dir, "vars.fd")
		if err := os.WriteFile(v, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+filepath.Join(ovmfDir, code),
			"-drive", "if=pflash,format=raw,unit=1,file="+v)
	}
	if mode.cdrom {
		args = append(args, "-drive", "file="+iso+",format=raw,if=ide,media=cdrom,readonly=on")
	} else {
		args = append(args, "-drive", "file="+iso+",format=raw,if=virtio,readonly=on")
	}
	args = append(args, "-machine", machine)

	ctx, cancel := context.WithTimeout(t.Context(), vm.TCG.Timeout(90*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s: qemu ran %s", mode.name, time.Since(start).Round(time.Second))
	console, _ := os.ReadFile(serial)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s: no power-off in time; console:\n%s", mode.name, tail(string(console), 40))
	}
	if err != nil {
		t.Fatalf("%s: qemu: %v\n%s\nconsole:\n%s", mode.name, err, stderr.String(), tail(string(console), 40))
	}
	return string(console)
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
