package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/vm"
)

// ErrHost marks errors caused by the host lacking something (root, a tool):
// tests skip on them outside CI and fail in CI.
var ErrHost = errors.New("host cannot run vm tests")

// baseBuildTimeout bounds a first build; a normal one takes 2-4 minutes.
const baseBuildTimeout = 20 * time.Minute

// Need returns the base image for t, building it on first use. Outside CI it
// skips t when the host cannot build or boot it; with CI=true it fails. With
// -short it skips.
func Need(t testing.TB) Image {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: vm tests build an image and boot for minutes")
	}
	if err := hostCanBoot(); err != nil {
		skipOrFail(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), baseBuildTimeout)
	defer cancel()
	img, err := Base(ctx, &lineLog{t: t, prefix: "base: "})
	if err != nil {
		if errors.Is(err, ErrHost) {
			skipOrFail(t, err)
		}
		t.Fatalf("vm base: %v", err)
	}
	return img
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %v", err)
	}
	t.Skipf("skipping: %v", err)
}

func hostCanBoot() error {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (packages qemu-system-x86, qemu-utils)", ErrHost, tool)
		}
	}
	return nil
}

// Accel returns the accelerator to boot img with: BAINODE_ACCEL (tcg or
// kvm) if set, otherwise vm.ProbeAccel's cached answer for img's kernel.
func Accel(ctx context.Context, img Image) (vm.Accel, error) {
	if a := os.Getenv("BAINODE_ACCEL"); a != "" {
		if a != string(vm.TCG) && a != string(vm.KVM) {
			return "", fmt.Errorf("BAINODE_ACCEL: %q is not tcg or kvm", a)
		}
		return vm.Accel(a), nil
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return vm.ProbeAccel(ctx, img.Kernel, img.Initrd, cache)
}

// Boot starts cfg under t and stops it in t.Cleanup. Empty fields are filled
// in: no Disk and no Kernel boots the base image (through its boot loader,
// or directly when it has none); no Accel uses Accel. The serial console is
// logged to t with -v; when t fails, its tail is logged and the whole log is
// kept in os.TempDir()/bainode-vm-logs.
func Boot(t testing.TB, cfg vm.Config) *vm.Machine {
	t.Helper()
	if cfg.Disk == "" && cfg.Kernel == "" {
		img := Need(t)
		cfg.Disk, cfg.DiskFormat = img.Disk, vm.FormatQCOW2
		if !img.Bootloader {
			cfg.Kernel, cfg.Initrd, cfg.Append = img.Kernel, img.Initrd, img.Append
		}
		if cfg.Accel == "" {
			a, err := Accel(t.Context(), img)
			if err != nil {
				t.Fatalf("accel: %v", err)
			}
			cfg.Accel = a
		}
	}
	if cfg.SerialLog == "" {
		cfg.SerialLog = filepath.Join(t.TempDir(), "serial.log")
	}
	if cfg.Console == nil && testing.Verbose() {
		cfg.Console = &lineLog{t: t, prefix: "console: "}
	}

	m, err := vm.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("vm.Start: %v", err)
	}
	t.Logf("qemu pid %d, accel %s, serial log %s", m.PID(), cfg.Accel, cfg.SerialLog)
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("vm stop: %v", err)
		}
		if t.Failed() {
			keepLog(t, m)
		}
	})
	return m
}

// keepLog copies the serial log out of t's temp dir and logs its tail.
func keepLog(t testing.TB, m *vm.Machine) {
	b, err := os.ReadFile(m.SerialLog())
	if err != nil {
		b = []byte(m.Output())
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	t.Logf("serial console, last %d lines:\n%s", min(60, len(lines)), strings.Join(lines[max(0, len(lines)-60):], "\n"))

	dir := filepath.Join(os.TempDir(), "bainode-vm-logs")
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dst := filepath.Join(dir, fmt.Sprintf("%s-%s.log", name, time.Now().Format("20060102-150405")))
	if err := os.MkdirAll(dir, 0o755); err == nil && os.WriteFile(dst, b, 0o644) == nil {
		t.Logf("serial log kept at %s", dst)
	}
}

// lineLog turns a byte stream into t.Log lines.
type lineLog struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(l.prefix + strings.TrimRight(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
}
