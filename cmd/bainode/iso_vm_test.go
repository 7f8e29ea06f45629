//go:build linux

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/deployfix"
	"github.com/lablup/bainode/testing/qemu"
)

// TestVMIsoSelfContained writes a self-contained image-mode ISO for
// vm-test's bai-vm (the test base as the role image, the node's seed from
// the site) and boots it on a machine with a blank disk and no host
// service at all (user networking with restrict=on, no forwards):
//   - SeaBIOS with the ISO as a CD: the agent reads the image off the CD,
//     writes it, ejects the CD and reboots;
//   - OVMF with the ISO written to a second disk, as dd does to a stick:
//     the agent must pick the blank disk, not the stick, though the rule is
//     "the only disk".
//
// Each machine then boots the written disk, cloud-init reads the seed from
// its partition, and the verifier passes.
func TestVMIsoSelfContained(t *testing.T) {
	img := qemu.Need(t)
	if !img.Bootloader || !img.UEFI {
		t.Fatal("the test base needs its BIOS boot loader and its ESP")
	}
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	image := deployfix.Image(t, img)
	env := deployfix.Env(t, img)
	dir := t.TempDir()
	isoPath := filepath.Join(dir, "bai-vm.iso")
	o, e, code := bainode(t, "", "iso", "--mode", "image", "--deploy-env", env, "--image", image,
		"--example", "vm-test", "--node", "bai-vm", "-o", isoPath)
	if code != 0 {
		t.Fatalf("bainode iso: exit %d\n%s%s", code, o, e)
	}
	t.Log(strings.TrimSpace(o))

	for _, tc := range []struct {
		name     string
		firmware vm.Firmware
		media    vm.Media
		want     []string // agent lines on the console
	}{
		{"bios-cd", vm.BIOS, vm.MediaCDROM, []string{"ejected the boot medium"}},
		{"uefi-stick", vm.UEFI, vm.MediaDisk, []string{"vdb is the boot medium: not a target", "target disk vda"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			blank := filepath.Join(t.TempDir(), "blank.qcow2")
			if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", blank, "6G").CombinedOutput(); err != nil {
				t.Fatalf("qemu-img create: %v\n%s", err, out)
			}
			start := time.Now()
			m := qemu.Boot(t, vm.Config{
				Accel: accel, MemoryMiB: 1536, CPUs: 2, Firmware: tc.firmware,
				Disk: blank, DiskFormat: vm.FormatQCOW2,
				Drives: []vm.Drive{{Path: isoPath, Format: vm.FormatRaw, Media: tc.media}},
			})
			ctx, cancel := context.WithTimeout(t.Context(), accel.Timeout(20*time.Minute))
			defer cancel()
			if err := m.WaitFor(ctx, "bainode-deploy: deployed:"); err != nil {
				t.Fatalf("deploy: %v (after %s)", err, time.Since(start).Round(time.Second))
			}
			deployed := time.Since(start)
			if err := m.WaitFor(ctx, verify.EndMarker); err != nil {
				t.Fatalf("verifier report: %v (after %s)", err, time.Since(start).Round(time.Second))
			}
			total := time.Since(start)
			if ds := deployfix.Report(t, m, total); !strings.Contains(strings.ToLower(ds), "nocloud") || strings.Contains(ds, "http") {
				t.Errorf("cloud-init data source %q, want NoCloud from the seed partition", ds)
			}
			out := m.Output()
			for _, want := range append(tc.want, "reading the image from the boot medium", "no network needed") {
				if !strings.Contains(out, want) {
					t.Errorf("the console lacks %q", want)
				}
			}
			if n := strings.Count(out, "bainode-deploy: environment up"); n != 1 {
				t.Errorf("the deploy environment booted %d times, want once: the reboot must go to the disk", n)
			}
			t.Logf("VM wall time: deployed after %s, verified after %s", deployed.Round(time.Second), total.Round(time.Second))
		})
	}
}
