//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/pxe"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/deployfix"
	"github.com/lablup/bainode/testing/qemu"
)

// secureBootOn is the kernel's message when it booted with Secure Boot
// enforced by the firmware.
const secureBootOn = "Secure boot enabled"

// TestVMImageDeploySecureBoot is TestVMImageDeploy under OVMF with Secure
// Boot enforced (Microsoft's keys enrolled): OVMF's own PXE loads the
// tree's shim over QEMU's TFTP, shim the signed network GRUB, GRUB the
// tree's grub.cfg and the deploy kernel (Debian's, signed) with its
// initramfs; the agent fetches its config from bainoded (signed GRUB has
// no http) and writes the image, whose ESP holds the signed shim and GRUB.
// A second machine with the same firmware and that disk boots it, reads
// its seed from bainoded and passes the verifier. Every loader and kernel
// ran under enforcement, so this covers plain UEFI as well: OVMF without
// Secure Boot runs the same binaries, skipping only the checks.
func TestVMImageDeploySecureBoot(t *testing.T) {
	img := qemu.Need(t)
	if !img.UEFI {
		t.Fatal("the test base has no ESP")
	}
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	code, vars := qemu.OVMFSecureBoot(t)
	loaders, err := pxe.FindLoaders("/")
	if err != nil {
		t.Fatalf("signed boot loaders (shim-signed, grub-efi-amd64-signed): %v", err)
	}
	exe, _ := os.Executable()
	image := deployfix.Image(t, img)
	envDir := deployfix.Env(t, img)
	t.Parallel()

	dir := t.TempDir()
	x := newImageDeploy(t, dir, envDir, image)
	addr := x.addr
	ctx := t.Context()
	fc := x.start(t)

	// The netboot tree, as 'bainode pxe' writes it; QEMU's TFTP serves it.
	tree, _, err := pxe.Build(pxe.Options{Server: guestBase, Loaders: loaders, DeployEnv: envDir,
		DeployArgs: []string{"console=ttyS0,115200n8"}, Images: map[string]string{"all-in-one": image}, Version: "test"},
		[]pxe.NodeInput{{Hostname: "bai-vm", MAC: qemuMAC, Target: "debian-12", Role: "all-in-one"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := tree.Seal("test")
	if err != nil {
		t.Fatal(err)
	}
	root, err := tree.Write(filepath.Join(dir, "pxe"), id)
	if err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(dir, "blank.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", blank, "6G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	disk := filepath.Join(dir, "disk.qcow2")
	fwd := []vm.GuestForward{{GuestAddr: guestAddr, Cmd: exe + " " + guestfwdArg + " " + addr}}

	// First machine: a blank disk, so the firmware boots from the network;
	// the agent's reboot ends it (-no-reboot) and leaves the disk.
	start := time.Now()
	m := qemu.Boot(t, vm.Config{
		Accel: accel, MemoryMiB: 2048, CPUs: 2,
		Firmware: vm.UEFI, SecureBoot: true, OVMFCode: code, OVMFVars: vars,
		Disk: blank, DiskFormat: vm.FormatQCOW2, Overlay: disk,
		TFTP: root, BootFile: "bootx64.efi", GuestForwards: fwd, NoReboot: true,
	})
	bootCtx, cancel := context.WithTimeout(ctx, accel.Timeout(25*time.Minute))
	defer cancel()
	if err := m.WaitFor(bootCtx, "bainode-deploy: environment up"); err != nil {
		t.Fatalf("the signed chain (OVMF Secure Boot, shim, signed GRUB over TFTP) did not reach the deploy kernel's init: %v", err)
	}
	if err := m.Wait(bootCtx); err != nil {
		t.Fatalf("deploy under Secure Boot: %v (after %s)", err, time.Since(start).Round(time.Second))
	}
	m.Stop()
	deployed := time.Since(start)
	out := m.Output()
	for _, want := range []string{"bainode: bai-vm: loading bainode deploy environment", secureBootOn, "bainode-deploy: deployed:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the deploy machine's console lacks %q", want)
		}
	}
	t.Logf("blank disk to deployed under Secure Boot: %s", deployed.Round(time.Second))

	// Second machine: the same firmware, the deployed disk, no netboot.
	m2 := qemu.Boot(t, vm.Config{
		Accel: accel, MemoryMiB: 2048, CPUs: 2,
		Firmware: vm.UEFI, SecureBoot: true, OVMFCode: code, OVMFVars: vars,
		Disk: disk, DiskFormat: vm.FormatQCOW2, GuestForwards: fwd,
	})
	if err := m2.WaitFor(bootCtx, verify.EndMarker); err != nil {
		t.Fatalf("the deployed disk under Secure Boot: %v (after %s)", err, time.Since(start).Round(time.Second))
	}
	total := time.Since(start)
	checkDeployedReport(t, m2, total)
	if !strings.Contains(m2.Output(), secureBootOn) {
		t.Errorf("the deployed system's kernel does not report %q", secureBootOn)
	}
	ev, err := fc.Events(ctx, "bai-vm", 0)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, e := range ev {
		if e.Stage == "deploy" {
			stages = append(stages, e.Result)
		}
	}
	if strings.Join(stages, ",") != "deploying,deployed" {
		t.Errorf("deploy stages %v, want deploying, deployed", stages)
	}
	t.Logf("VM wall time under Secure Boot: deployed after %s, verified after %s", deployed.Round(time.Second), total.Round(time.Second))
}
