// Package smoke boots a disk image with a NoCloud seed under QEMU and
// collects the in-guest verifier's report from the serial console, once per
// boot. It is what `bainode smoke` and bainode's own VM tests run.
package smoke

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
)

// Options describe one smoke run.
type Options struct {
	Image      string // boot disk, raw or qcow2; never written
	Seed       string // NoCloud seed, ISO9660 or FAT
	SeedFormat string // "iso" or "vfat"
	// Extra drives after the seed (a payload disk, say).
	Drives []vm.Drive

	// Kernel, Initrd and Append boot directly instead of through the
	// image's boot loader.
	Kernel, Initrd, Append string

	Boots     int           // default 1; each later boot restarts the guest on the same disk
	Timeout   time.Duration // per boot, until the report; default 15 minutes
	Accel     vm.Accel      // default TCG
	MemoryMiB int           // default 2048
	CPUs      int           // default 2
	Firmware  vm.Firmware
	NoNetwork bool

	// LogDir keeps each boot's serial log as boot-N.log; default: a temp dir
	// that is removed after a passing run.
	LogDir string
	// Progress receives one line per boot stage seen on the console.
	Progress io.Writer
}

// Result is one report per boot that got that far.
type Result struct {
	Reports []verify.Report
	Logs    []string // serial log per boot
	Elapsed []time.Duration
}

// Run boots opts.Boots times and returns the reports. An error means a boot
// produced no report (timeout, crash); failed checks are not errors.
func Run(ctx context.Context, o Options) (res Result, err error) {
	if o.Boots < 1 {
		o.Boots = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	vm.FillProvision(&o.MemoryMiB, &o.CPUs, &o.Accel)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	work, err := os.MkdirTemp("", "bainode-smoke-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	logDir := o.LogDir
	if logDir == "" {
		logDir = work
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return res, err
	}
	format, err := vm.DetectFormat(o.Image)
	if err != nil {
		return res, fmt.Errorf("%s: %w", o.Image, err)
	}
	seedDrive := vm.Drive{Path: o.Seed, Format: vm.FormatRaw, Media: vm.MediaCDROM, ReadOnly: true}
	if o.SeedFormat == "vfat" || o.SeedFormat == "fat" {
		seedDrive.Media = vm.MediaDisk
	}
	// The guest's writes go to this overlay, which later boots start from:
	// a reboot must see what the first boot left.
	disk := filepath.Join(work, "disk.qcow2")
	for boot := 1; boot <= o.Boots; boot++ {
		cfg := vm.Config{
			Disk: o.Image, DiskFormat: format, Overlay: disk,
			Drives: append([]vm.Drive{seedDrive}, o.Drives...),
			Kernel: o.Kernel, Initrd: o.Initrd, Append: o.Append,
			MemoryMiB: o.MemoryMiB, CPUs: o.CPUs, Accel: o.Accel, Firmware: o.Firmware,
			NoNetwork: o.NoNetwork,
			SerialLog: filepath.Join(logDir, fmt.Sprintf("boot-%d.log", boot)),
		}
		if boot > 1 {
			// Boot on top of the previous boot's disk.
			prev := filepath.Join(work, fmt.Sprintf("disk-%d.qcow2", boot-1))
			if err := os.Rename(disk, prev); err != nil {
				return res, err
			}
			cfg.Disk, cfg.DiskFormat = prev, vm.FormatQCOW2
		}
		start := time.Now()
		rep, err := bootOnce(ctx, cfg, boot, o)
		res.Logs = append(res.Logs, cfg.SerialLog)
		if err != nil {
			return res, fmt.Errorf("boot %d: %w (serial log: %s)", boot, err, keepLog(cfg.SerialLog, o.LogDir))
		}
		res.Reports = append(res.Reports, rep)
		res.Elapsed = append(res.Elapsed, time.Since(start))
	}
	return res, nil
}

// keepLog copies a failed boot's log out of the temp dir that Run removes.
func keepLog(log, logDir string) string {
	if logDir != "" {
		return log
	}
	kept := filepath.Join(os.TempDir(), "bainode-smoke-"+filepath.Base(log))
	if b, err := os.ReadFile(log); err == nil && os.WriteFile(kept, b, 0o644) == nil {
		return kept
	}
	return log
}

func bootOnce(ctx context.Context, cfg vm.Config, boot int, o Options) (verify.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	st := &stages{w: o.Progress, boot: boot, start: time.Now()}
	cfg.Console = st
	m, err := vm.Start(ctx, cfg)
	if err != nil {
		return verify.Report{}, err
	}
	defer m.Stop()
	fmt.Fprintf(o.Progress, "boot %d: started QEMU (pid %d, %s)\n", boot, m.PID(), cfg.Accel)
	if err := m.WaitFor(ctx, verify.EndMarker); err != nil {
		return verify.Report{}, err
	}
	rep, err := verify.Extract([]byte(m.Output()))
	if err != nil {
		return verify.Report{}, err
	}
	fmt.Fprintf(o.Progress, "boot %d: report after %s\n", boot, time.Since(st.start).Round(time.Second))
	// Let the guest finish writing before the power is cut.
	time.Sleep(2 * time.Second)
	return rep, nil
}

// stages turns console lines into progress lines: cloud-init's stages and
// the provisioning steps.
type stages struct {
	w     io.Writer
	boot  int
	start time.Time
	line  []byte
	last  string
}

var stageWords = []struct{ match, say string }{
	{"Linux version", "kernel"},
	{"running 'init-local'", "cloud-init init-local"},
	{"running 'init'", "cloud-init init"},
	{"running 'modules:config'", "cloud-init modules:config"},
	{"running 'modules:final'", "cloud-init modules:final"},
	{"bainode-provision[", ""},
	{"finished at", "cloud-init finished"},
	{verify.BeginMarker, "verifier report"},
}

func (s *stages) Write(p []byte) (int, error) {
	for _, c := range p {
		if c != '\n' {
			if len(s.line) < 4096 {
				s.line = append(s.line, c)
			}
			continue
		}
		s.note(string(s.line))
		s.line = s.line[:0]
	}
	return len(p), nil
}

func (s *stages) note(l string) {
	for _, w := range stageWords {
		i := strings.Index(l, w.match)
		if i < 0 {
			continue
		}
		say := w.say
		if say == "" { // provisioning step: "bainode-provision[docker]: begin"
			rest := l[i+len(w.match):]
			j := strings.IndexByte(rest, ']')
			if j < 0 || !strings.Contains(rest, "begin") {
				return
			}
			say = "provisioning: " + rest[:j]
		}
		if say != s.last {
			s.last = say
			fmt.Fprintf(s.w, "boot %d: [%4ds] %s\n", s.boot, int(time.Since(s.start).Seconds()), say)
		}
		return
	}
}

// ErrFailed is returned by callers that treat failed checks as an error.
var ErrFailed = errors.New("checks failed")
