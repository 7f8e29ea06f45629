package qemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/vm"
)

// NetBoot is a diskless machine that boots over QEMU's user-mode network:
// its built-in DHCP hands out Bootfile, its TFTP server serves TFTP, and
// restrict=on keeps the guest off every other network.
type NetBoot struct {
	TFTP     string // TFTP root directory
	Bootfile string // path in TFTP, e.g. pxelinux.0 or bootx64.efi
	Firmware vm.Firmware
	// SecureBoot boots OVMF's Secure Boot build with Microsoft's keys
	// enrolled (UEFI only): it runs only what those keys (or shim) accept.
	SecureBoot bool
	MemoryMiB  int // default 512
}

// OVMF images with Secure Boot and Microsoft's keys (package ovmf).
const (
	ovmfSecureCode = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
	ovmfSecureVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// OVMFSecureBoot returns OVMF's Secure Boot build and its variable store
// with Microsoft's keys enrolled (for vm.Config.SecureBoot); outside CI it
// skips t when the package ovmf lacks them.
func OVMFSecureBoot(t testing.TB) (code, vars string) {
	t.Helper()
	for _, p := range []string{ovmfSecureCode, ovmfSecureVars} {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, fmt.Errorf("%w: %v (package ovmf)", ErrHost, err))
		}
	}
	return ovmfSecureCode, ovmfSecureVars
}

// netbootTimeout bounds one boot under KVM; TCG gets vm's factor more.
const netbootTimeout = time.Minute

// NetBootCmdline boots nb until the kernel it reaches runs
// CmdlineInitramfs's /init, and returns the kernel command line and the
// kernel's Secure Boot messages (empty on BIOS). The serial console is
// logged with -v and its tail when t fails.
func NetBootCmdline(t testing.TB, nb NetBoot) (cmdline string, secureBoot []string) {
	t.Helper()
	if err := hostCanBoot(); err != nil {
		skipOrFail(t, err)
	}
	accel := vm.TCG
	if os.Getenv("BAINODE_ACCEL") == string(vm.KVM) {
		accel = vm.KVM
	}
	mem := nb.MemoryMiB
	if mem == 0 {
		mem = 512
	}
	machine := "q35"
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-m", fmt.Sprint(mem)}
	if accel == vm.KVM {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "max")
	}
	// UEFI: OVMF's own virtio-net driver, no unsigned iPXE ROM. BIOS:
	// QEMU's default ROM, ipxe-qemu's iPXE (naming it by path stops SeaBIOS
	// from running it).
	nic := "virtio-net-pci,netdev=n0,romfile="
	switch nb.Firmware {
	case vm.UEFI:
		code, vars := ovmfSecureCode, ovmfSecureVars
		if !nb.SecureBoot {
			var err error
			if code, vars, err = vm.FindOVMF(); err != nil {
				skipOrFail(t, fmt.Errorf("%w: %v", ErrHost, err))
			}
		} else {
			// Secure Boot needs SMM so that the OS cannot write the variables.
			machine += ",smm=on"
			args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		for _, p := range []string{code, vars} {
			if _, err := os.Stat(p); err != nil {
				skipOrFail(t, fmt.Errorf("%w: %v (package ovmf)", ErrHost, err))
			}
		}
		varsCopy := filepath.Join(t.TempDir(), "vars.fd")
		b, err := os.ReadFile(vars)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(varsCopy, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	case vm.BIOS, "":
		nic = "virtio-net-pci,netdev=n0"
		// pxelinux and the kernel's real-mode setup call the video BIOS;
		// without a VGA card's ROM they hang. Nothing is displayed.
		args = append(args, "-device", "VGA")
	}
	args = append(args, "-machine", machine,
		"-netdev", "user,id=n0,restrict=on,tftp="+nb.TFTP+",bootfile="+nb.Bootfile,
		"-device", nic,
		"-boot", "n", "-serial", "stdio", "-monitor", "none")

	ctx, cancel := context.WithTimeout(t.Context(), accel.Timeout(netbootTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var out syncBuffer
	var w io.Writer = &out
	if testing.Verbose() {
		w = io.MultiWriter(&out, &lineLog{t: t, prefix: "console: "})
	}
	cmd.Stdout, cmd.Stderr = w, w
	t.Logf("qemu %s", strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The guest powers off once it has printed, but the dump is all we need:
	// stop QEMU as soon as it is complete.
	var (
		got     string
		ok      bool
		perr    error
		err     error
		running = true
	)
	for running && !ok && perr == nil {
		select {
		case err = <-exited:
			running = false
		case <-time.After(200 * time.Millisecond):
		}
		got, ok, perr = ParseCmdline(out.String())
	}
	if running {
		cancel() // kills QEMU
		<-exited
	}
	t.Logf("netboot %s: %s", nb.Bootfile, time.Since(start).Round(time.Second))
	if !ok || perr != nil {
		t.Fatalf("netboot %s: qemu: %v; command line found: %v (%v); console:\n%s", nb.Bootfile, err, ok, perr, tailLines(out.String(), 60))
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if _, msg, ok := strings.Cut(line, SecureBootPrefix); ok {
			secureBoot = append(secureBoot, strings.TrimSpace(msg))
		}
	}
	return got, secureBoot
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
