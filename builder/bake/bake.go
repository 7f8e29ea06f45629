// Package bake makes golden disk images: it boots a base image once under
// QEMU with a seed holding the image part of the install plan, seals the
// guest for cloning after cloud-init finished, and converts the disk to the
// output, with a JSON manifest beside it. Outputs are cached by a hash of
// all inputs.
package bake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/vm"
)

// Options describe one bake.
type Options struct {
	Base       string // base disk, raw or qcow2; only read
	BaseFormat string // vm.FormatRaw or vm.FormatQCOW2; empty: detected
	// BaseSHA256, when set, is what the base must hash to (a cloud image
	// from the fetch cache: see CloudImage).
	BaseSHA256 string
	// Kernel, Initrd and Append boot directly (bases without a boot loader).
	Kernel, Initrd, Append string

	// Seed is the node seed as bainode renders it (the whole plan); the
	// bake runs its image steps only (see ImageSeed).
	Seed    render.Files
	Payload string // payload disk from `bainode payload`; attached read-only
	Online  bool   // NAT to the network instead of restrict=on

	Output string
	Format Format
	// Compat writes a qcow2 output with zlib, for QEMU older than 5.1
	// (Ubuntu 20.04 hosts), instead of zstd.
	Compat   bool
	DiskSize int64 // bytes; 0 keeps the base's virtual size

	Accel     vm.Accel
	MemoryMiB int
	CPUs      int
	Timeout   time.Duration // the boot, until power-off; default 30 min
	Keep      bool          // keep the work dir of a failed bake
	Version   string        // bainode's version, part of the cache key
	// HashCache is a directory remembering the sha256 of big inputs by
	// path, size and mtime, so a cache hit needs no full read. Optional.
	HashCache string

	Progress io.Writer // stage lines
	Console  io.Writer // the whole serial console, optional
}

// State is what the steps share. Every field is typed: a step reads what
// an earlier one set, checked by the compiler.
type State struct {
	Opts     Options
	Manifest Manifest
	Marker   string // random text in the bake seed, to scan the output for

	WorkDir  string
	SeedISO  string
	WorkDisk string // qcow2 backed by the base, grown
	Disk     string // the guest's disk after the boot (overlay of WorkDisk)
	Serial   string
	undos    []undo
}

func (s *State) progress() io.Writer {
	if s.Opts.Progress == nil {
		return io.Discard
	}
	return s.Opts.Progress
}

// Result is a finished bake.
type Result struct {
	Manifest Manifest
	CacheHit bool
	Marker   string // empty on a cache hit
}

// Bake runs the pipeline, or reuses Output when its manifest has the same
// input key.
func Bake(ctx context.Context, o Options) (Result, error) {
	if err := o.fill(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	inputs, key, err := o.inputs()
	if err != nil {
		return Result{}, err
	}
	if m, ok := cached(o.Output, key); ok {
		fmt.Fprintf(o.Progress, "cache hit: %s is up to date (key %s, checked in %s)\n", o.Output, key[:16], time.Since(start).Round(time.Millisecond))
		return Result{Manifest: m, CacheHit: true}, nil
	}
	s := &State{Opts: o, Marker: randomHex(16)}
	s.Manifest = Manifest{Version: 1, Key: key, Inputs: inputs, Format: o.Format, Created: time.Now().UTC().Format(time.RFC3339)}
	steps := []Step{
		{"work dir", stepWorkDir},
		{"bake seed", stepSeed},
		{"working copy", stepWorkCopy},
		{"boot and seal", stepBoot},
		{"convert", stepConvert},
		{"manifest", stepManifest},
	}
	err = runSteps(ctx, s, steps, o.Progress)
	if err != nil {
		return Result{Manifest: s.Manifest}, err
	}
	fmt.Fprintf(o.Progress, "baked %s (%s, %d bytes) in %s\n", o.Output, o.Format, s.Manifest.Output.Size, time.Since(start).Round(time.Second))
	return Result{Manifest: s.Manifest, Marker: s.Marker}, nil
}

func (o *Options) fill() error {
	var errs []error
	if o.Base == "" {
		errs = append(errs, errors.New("base: required"))
	} else if _, err := os.Stat(o.Base); err != nil {
		errs = append(errs, fmt.Errorf("base: %w", err))
	}
	if o.Output == "" {
		errs = append(errs, errors.New("output: required"))
	}
	if o.Format == "" {
		o.Format = FormatQCOW2
	}
	if err := o.Format.check(); err != nil {
		errs = append(errs, err)
	}
	if o.Compat && o.Format != FormatQCOW2 {
		errs = append(errs, fmt.Errorf("compat: only for the qcow2 format (not %s)", o.Format))
	}
	if o.Payload != "" && o.Online {
		errs = append(errs, errors.New("payload and online: choose one (an offline bake carries its payload)"))
	}
	if len(o.Seed.UserData) == 0 {
		errs = append(errs, errors.New("seed: no user-data"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if o.BaseFormat == "" {
		f, err := vm.DetectFormat(o.Base)
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		o.BaseFormat = f
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	vm.FillProvision(&o.MemoryMiB, &o.CPUs, &o.Accel)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

func stepWorkDir(_ context.Context, s *State) error {
	dir, err := os.MkdirTemp(filepath.Dir(s.Opts.Output), ".bainode-bake-")
	if err != nil {
		return err
	}
	s.WorkDir = dir
	s.Always("work dir "+dir, func() error { return os.RemoveAll(dir) })
	return nil
}

func stepSeed(_ context.Context, s *State) error {
	files, err := ImageSeed(s.Opts.Seed, s.Marker)
	if err != nil {
		return err
	}
	s.SeedISO = filepath.Join(s.WorkDir, "bake-seed.iso")
	return seed.WriteISO(s.SeedISO, files.FS())
}

func stepWorkCopy(ctx context.Context, s *State) error {
	abs, err := filepath.Abs(s.Opts.Base)
	if err != nil {
		return err
	}
	s.WorkDisk = filepath.Join(s.WorkDir, "work.qcow2")
	args := []string{"create", "-q", "-f", vm.FormatQCOW2, "-F", s.Opts.BaseFormat, "-b", abs, s.WorkDisk}
	if s.Opts.DiskSize > 0 {
		args = append(args, fmt.Sprint(s.Opts.DiskSize))
	}
	return qemuImg(ctx, args...)
}

func stepBoot(ctx context.Context, s *State) error {
	o := s.Opts
	s.Disk = filepath.Join(s.WorkDir, "disk.qcow2")
	s.Serial = filepath.Join(s.WorkDir, "serial.log")
	cfg := vm.Config{
		Disk: s.WorkDisk, DiskFormat: vm.FormatQCOW2, Overlay: s.Disk, DiskDiscard: true, OverlayClusterSize: 4096, DiskCache: "unsafe",
		Drives: []vm.Drive{{Path: s.SeedISO, Format: vm.FormatRaw, Media: vm.MediaCDROM}},
		Kernel: o.Kernel, Initrd: o.Initrd, Append: o.Append,
		MemoryMiB: o.MemoryMiB, CPUs: o.CPUs, Accel: o.Accel,
		SerialLog: s.Serial, Online: o.Online, NoReboot: true,
	}
	if o.Payload != "" {
		cfg.Drives = append(cfg.Drives, vm.Drive{Path: o.Payload, Format: vm.FormatRaw, ReadOnly: true})
	}
	if !o.Online {
		cfg.NetDump = filepath.Join(s.WorkDir, "net.pcap")
	}
	stages := &stageWriter{w: o.Progress}
	if o.Console != nil {
		cfg.Console = io.MultiWriter(stages, o.Console)
	} else {
		cfg.Console = stages
	}
	bootCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	m, err := vm.Start(bootCtx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Progress, "    qemu pid %d (%s, %s)\n", m.PID(), o.Accel, map[bool]string{true: "online: NAT", false: "offline: restrict=on"}[o.Online])
	defer m.Stop() // by PID; on Ctrl-C ctx ends and Start's watcher kills it too
	waitErr := m.Wait(bootCtx)
	out := m.Output()
	if err := ctx.Err(); err != nil {
		return err
	}
	if cfg.NetDump != "" {
		m.Stop() // QEMU has written its last frame
		tries, err := netAttempts(cfg.NetDump)
		if err != nil {
			return fmt.Errorf("the guest's network dump: %w", err)
		}
		if len(tries) > 0 {
			return &NetworkError{Attempts: tries}
		}
	}
	rep, perr := parseSealReport(out)
	if waitErr != nil || perr != nil {
		return fmt.Errorf("%w\n%s", errors.Join(waitErr, perr), consoleTail(out, 40))
	}
	s.Manifest.Seal = rep
	s.Manifest.Packages, s.Manifest.Kernels, s.Manifest.DriverVermagic = rep.Packages, rep.Kernels, rep.DriverVermagic
	s.Manifest.Seal.Packages, s.Manifest.Seal.Kernels, s.Manifest.Seal.DriverVermagic = nil, nil, nil
	if rep.CloudInitStatus != "done" || len(rep.Errors) > 0 {
		tail := rep.CloudInitLogTail
		if tail == "" {
			tail = consoleTail(out, 40)
		}
		return fmt.Errorf("the guest was not sealed: %s\ncloud-init's log, last lines:\n%s", strings.Join(rep.Errors, "; "), tail)
	}
	return nil
}

func consoleTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stageWriter passes the console lines that tell where the bake is:
// cloud-init's stages, provisioning and the seal.
type stageWriter struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func (sw *stageWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.buf = append(sw.buf, p...)
	for {
		i := strings.IndexByte(string(sw.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimRight(string(sw.buf[:i]), "\r")
		sw.buf = sw.buf[i+1:]
		if isStage(line) {
			fmt.Fprintf(sw.w, "    | %s\n", line)
		}
	}
}

func isStage(l string) bool {
	for _, k := range []string{"Cloud-init v.", "bainode-provision[", "bainode-seal:", "Power-Off", "reboot: Power down"} {
		if strings.Contains(l, k) {
			return !strings.Contains(l, "bsr ")
		}
	}
	return false
}

func qemuImg(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
