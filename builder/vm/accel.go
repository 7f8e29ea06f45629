package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Accel is how QEMU executes guest code.
type Accel string

const (
	TCG Accel = "tcg" // software emulation: always works, several times slower
	KVM Accel = "kvm" // hardware virtualisation through /dev/kvm
)

// tcgScale is how much longer a TCG boot takes than a KVM one. It is an
// estimate (TCG boots are usually 5-10 times slower); a Debian 12 guest takes
// 2-5 minutes to the end of cloud-init under TCG on a loaded 2-core host.
const tcgScale = 6

// TimeoutScale is the factor to stretch KVM-sized timeouts by.
func (a Accel) TimeoutScale() int {
	if a == KVM {
		return 1
	}
	return tcgScale
}

// Timeout scales d, a timeout that is right under KVM, for a.
func (a Accel) Timeout(d time.Duration) time.Duration {
	return d * time.Duration(a.TimeoutScale())
}

func (a Accel) args() ([]string, error) {
	switch a {
	case "", TCG:
		// max: every feature TCG emulates, so guests pick fast code paths.
		return []string{"-accel", "tcg,thread=multi", "-cpu", "max"}, nil
	case KVM:
		return []string{"-accel", "kvm", "-cpu", "host"}, nil
	}
	return nil, fmt.Errorf("%q is not %q or %q", a, TCG, KVM)
}

// probeTimeout bounds the KVM test boot. A kernel under working KVM panics
// (no root fs) in a second or two; a broken KVM hangs or aborts.
const probeTimeout = 30 * time.Second

// probeMarker is printed by the kernel only after it initialised every
// device and failed to find a root file system: early hangs never get here.
const probeMarker = "Kernel panic"

// probeRecord is the cached answer of ProbeAccel.
type probeRecord struct {
	Key     probeKey `json:"key"`
	Accel   Accel    `json:"accel"`
	Reason  string   `json:"reason"`
	Seconds float64  `json:"seconds"`
}

type probeKey struct {
	QEMU         string `json:"qemu"`
	KernelSHA256 string `json:"kernel_sha256"`
	DevKVM       bool   `json:"dev_kvm"`
}

// ProbeAccel decides between KVM and TCG by booting kernel under KVM for a
// few seconds and watching its console. /dev/kvm alone proves nothing: on
// some nested hosts it exists, yet `-cpu host` aborts QEMU or the guest
// kernel hangs early (on bainode's build machines a Debian 12 kernel prints
// nothing in 30 s under KVM with -cpu host, max or qemu64).
//
// The kernel boots with initrd (may be empty), no root file system and
// panic=-1, so a working KVM ends in "Kernel panic" almost at once. The
// answer is cached in cacheDir, keyed by the QEMU version, the kernel's
// SHA-256 and whether /dev/kvm exists; later calls do not boot.
func ProbeAccel(ctx context.Context, kernel, initrd, cacheDir string) (Accel, error) {
	key, err := newProbeKey(ctx, kernel)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(key.QEMU + "\x00" + key.KernelSHA256 + "\x00" + fmt.Sprint(key.DevKVM)))
	cache := filepath.Join(cacheDir, "accel-"+hex.EncodeToString(sum[:8])+".json")

	if b, err := os.ReadFile(cache); err == nil {
		var rec probeRecord
		if json.Unmarshal(b, &rec) == nil && rec.Key == key && rec.Accel.valid() {
			return rec.Accel, nil
		}
	}

	rec := probeRecord{Key: key, Accel: TCG}
	start := time.Now()
	if err := kvmUsable(); err != nil {
		rec.Reason = err.Error()
	} else if err := probeBoot(ctx, kernel, initrd); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("probing kvm: %w", ctx.Err()) // not an answer: don't cache
		}
		rec.Reason = err.Error()
	} else {
		rec.Accel, rec.Reason = KVM, "kernel reached "+probeMarker+" under kvm"
	}
	rec.Seconds = time.Since(start).Seconds()

	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := writeFileAtomic(cache, append(b, '\n')); err != nil {
		return "", fmt.Errorf("accel cache: %w", err)
	}
	return rec.Accel, nil
}

func (a Accel) valid() bool { return a == TCG || a == KVM }

func newProbeKey(ctx context.Context, kernel string) (probeKey, error) {
	f, err := os.Open(kernel)
	if err != nil {
		return probeKey{}, fmt.Errorf("kernel: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return probeKey{}, fmt.Errorf("kernel: %w", err)
	}
	qemu, err := qemuBinary()
	if err != nil {
		return probeKey{}, err
	}
	out, err := exec.CommandContext(ctx, qemu, "--version").Output()
	if err != nil {
		return probeKey{}, fmt.Errorf("%s --version: %w", qemu, err)
	}
	version, _, _ := strings.Cut(string(out), "\n")
	_, statErr := os.Stat("/dev/kvm")
	return probeKey{
		QEMU:         strings.TrimSpace(version),
		KernelSHA256: hex.EncodeToString(h.Sum(nil)),
		DevKVM:       statErr == nil,
	}, nil
}

func kvmUsable() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("/dev/kvm: %w", err)
	}
	return f.Close()
}

func probeBoot(ctx context.Context, kernel, initrd string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	m, err := Start(ctx, Config{
		Kernel: kernel,
		Initrd: initrd,
		// rdinit and root point nowhere: the kernel initialises everything,
		// then panics; panic=-1 reboots at once and -no-reboot ends QEMU.
		Append:    "console=ttyS0 panic=-1 rdinit=/nonexistent root=/dev/nonexistent",
		Accel:     KVM,
		MemoryMiB: 512,
		NoNetwork: true,
		NoReboot:  true,
	})
	if err != nil {
		return err
	}
	defer m.Stop()
	if err := m.WaitFor(ctx, probeMarker); err != nil {
		return fmt.Errorf("kvm boot: %w (console: %q)", err, tail(m.Output(), 200))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}

// Provisioning boots (bake, smoke) run cloud-init with apt and Docker, so
// they default to more than Args' bare guest.
const (
	ProvisionMemoryMiB = 2048
	ProvisionCPUs      = 2
)

// FillProvision sets the zero ones of a provisioning boot's size and
// accelerator to their defaults.
func FillProvision(memoryMiB, cpus *int, accel *Accel) {
	if *memoryMiB == 0 {
		*memoryMiB = ProvisionMemoryMiB
	}
	if *cpus == 0 {
		*cpus = ProvisionCPUs
	}
	if *accel == "" {
		*accel = TCG
	}
}
