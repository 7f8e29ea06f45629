// Package qemu provides the Debian 12 VM base image that bainode's VM tests
// boot, and helpers to boot it under a test.
//
// The base is built once from Debian's packages with mmdebstrap (about two
// minutes) and cached under the user's cache dir, keyed by the hash of its
// recipe (build-base.sh and packages.txt): edit either and the next run
// rebuilds. A file lock keeps parallel test binaries from building it twice.
package qemu

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

var (
	//go:embed build-base.sh
	buildScript []byte
	//go:embed packages.txt
	packageList []byte
)

// diskSizeMiB is the base disk's virtual size; qcow2 stores only what is used.
const diskSizeMiB = 4096

// Image is a built base: an MBR disk that boots by itself through extlinux
// (unless Bootloader is false), and its kernel and initrd for direct boots.
type Image struct {
	Dir    string // cache directory holding everything below
	Disk   string // qcow2; never boot it directly, vm.Start overlays it
	Kernel string
	Initrd string
	// Append is the kernel command line the disk's boot loader uses (root
	// by UUID, serial console on ttyS0).
	Append string
	// Bootloader is false where the build could not loop-mount the file
	// system to install extlinux; boot Kernel and Initrd directly then.
	Bootloader bool
	// UEFI is true where the disk also boots under OVMF (GRUB on its ESP).
	UEFI          bool
	KernelVersion string
}

// manifest is base.json, written by build-base.sh as its last step.
type manifest struct {
	KernelVersion string `json:"kernel_version"`
	RootUUID      string `json:"root_uuid"`
	Append        string `json:"append"`
	Bootloader    bool   `json:"bootloader"`
	UEFI          bool   `json:"uefi"`
}

// RecipeHash identifies the base's recipe; it names the cache directory.
func RecipeHash() string {
	h := sha256.New()
	for _, part := range [][]byte{buildScript, packageList, []byte(fmt.Sprint(diskSizeMiB))} {
		fmt.Fprintf(h, "%d\n", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CacheDir is where bainode's VM test artefacts live: the bases and the
// accelerator probe's answers.
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(dir, "bainode"), nil
}

// BuildTools are the programs the base build runs, with their Debian packages.
var BuildTools = map[string]string{
	"mmdebstrap":   "mmdebstrap",
	"mkfs.ext4":    "e2fsprogs",
	"sfdisk":       "fdisk",
	"losetup":      "mount",
	"extlinux":     "extlinux",
	"grub-mkimage": "grub-common",
	"mkfs.vfat":    "dosfstools",
	"mcopy":        "mtools",
	"qemu-img":     "qemu-utils",
}

// Base returns the cached base image, building it first if it is missing.
// Build progress goes to logw. Building needs root (mmdebstrap's root mode
// and a loop mount for extlinux) and network access to the Debian archive
// configured in the host's apt sources.
func Base(ctx context.Context, logw io.Writer) (Image, error) {
	if logw == nil {
		logw = io.Discard
	}
	cache, err := CacheDir()
	if err != nil {
		return Image{}, err
	}
	root := filepath.Join(cache, "vm-base")
	dir := filepath.Join(root, RecipeHash())
	if img, err := load(dir); err == nil {
		return img, nil
	}

	if err := os.MkdirAll(root, 0o755); err != nil {
		return Image{}, err
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	// Someone else may have built it while we waited for the lock.
	if img, err := load(dir); err == nil {
		return img, nil
	}

	start := time.Now()
	if err := build(ctx, dir, logw); err != nil {
		return Image{}, fmt.Errorf("building vm base %s: %w", dir, err)
	}
	fmt.Fprintf(logw, "vm base built in %s: %s\n", time.Since(start).Round(time.Second), dir)
	pruneOthers(root, filepath.Base(dir), logw)
	return load(dir)
}

// pruneAfter is how long a base of another recipe may go unused before a
// build removes it: branches with different recipes share the cache, and
// must not remove each other's bases mid-run.
const pruneAfter = 24 * time.Hour

// pruneOthers removes bases of other recipes (about 800 MB each) that no
// run has loaded for pruneAfter. A VM still running on one keeps its open
// backing file.
func pruneOthers(root, keep string, logw io.Writer) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == keep || len(name) != 64 || strings.Trim(name, "0123456789abcdef") != "" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(root, name, "base.json")); err == nil && time.Since(fi.ModTime()) < pruneAfter {
			continue
		}
		if err := removeUnmounted(filepath.Join(root, name)); err != nil {
			fmt.Fprintf(logw, "vm base: pruning an old base: %v\n", err)
			continue
		}
		os.Remove(filepath.Join(root, name+".lock"))
		fmt.Fprintf(logw, "vm base: removed old base %s\n", name)
	}
}

func load(dir string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, "base.json"))
	if err != nil {
		return Image{}, err
	}
	// base.json's mtime says when the base was last used (see pruneOthers).
	now := time.Now()
	os.Chtimes(filepath.Join(dir, "base.json"), now, now)
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Image{}, fmt.Errorf("%s: %w", filepath.Join(dir, "base.json"), err)
	}
	img := Image{
		Dir:           dir,
		Disk:          filepath.Join(dir, "disk.qcow2"),
		Kernel:        filepath.Join(dir, "vmlinuz"),
		Initrd:        filepath.Join(dir, "initrd.img"),
		Append:        m.Append,
		Bootloader:    m.Bootloader,
		UEFI:          m.UEFI,
		KernelVersion: m.KernelVersion,
	}
	for _, p := range []string{img.Disk, img.Kernel, img.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return Image{}, err
		}
	}
	return img, nil
}

// build runs build-base.sh into a fresh directory next to dir and renames it
// into place only when complete, so an interrupted build leaves no base.
func build(ctx context.Context, dir string, logw io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: building the base needs root (mmdebstrap --mode=root, loop mount for extlinux)", ErrHost)
	}
	var missing []string
	for tool, pkg := range BuildTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%w: missing tools: %s", ErrHost, strings.Join(missing, ", "))
	}

	// Leftovers of builds that died (the lock is ours, nobody else is building).
	stale, _ := filepath.Glob(dir + ".tmp-*")
	for _, s := range stale {
		if err := removeUnmounted(s); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			removeUnmounted(tmp)
		}
	}()

	sources, err := hostSources()
	if err != nil {
		return err
	}
	srcFile := filepath.Join(tmp, "sources.sources")
	script := filepath.Join(tmp, "build-base.sh")
	if err := os.WriteFile(srcFile, sources, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(script, buildScript, 0o755); err != nil {
		return err
	}

	cmd := exec.CommandContext(ctx, "/bin/bash", script)
	cmd.Env = append(os.Environ(),
		"OUT="+tmp,
		"SOURCES="+srcFile,
		"PACKAGES="+strings.Join(packages(), ","),
		fmt.Sprintf("SIZE_MIB=%d", diskSizeMiB),
		"LC_ALL=C.UTF-8",
	)
	cmd.Stdout, cmd.Stderr = logw, logw
	// The build's own process group gets SIGTERM on cancel, so mmdebstrap
	// unmounts /proc and /sys of the chroot before anything is removed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build-base.sh: %w", err)
	}
	for _, f := range []string{srcFile, script} {
		os.Remove(f)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	ok = true
	return nil
}

// packages reads packages.txt: one name a line, # comments.
func packages() []string {
	var pkgs []string
	for _, line := range strings.Split(string(packageList), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			pkgs = append(pkgs, line)
		}
	}
	return pkgs
}

// removeUnmounted deletes a build directory unless something is still
// mounted below it: deleting through a live /proc, /sys or /dev mount of a
// chroot would damage the host.
func removeUnmounted(dir string) error {
	m, err := mountedBelow(dir)
	if err != nil {
		return err
	}
	if m != "" {
		return fmt.Errorf("not removing %s: %s is still mounted", dir, m)
	}
	return os.RemoveAll(dir)
}

// mountedBelow returns a mount point at or below dir, if any.
func mountedBelow(dir string) (string, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		// Field 5 is the mount point (octal escapes are fine for a prefix test).
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			return fields[4], nil
		}
	}
	return "", nil
}

// lock takes an exclusive flock on path, waiting until ctx ends.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// Packages lists the base's packages (packages.txt), for fixtures that
// need to know what the base carries.
func Packages() []string { return packages() }

// Lock takes the exclusive file lock Base uses, for fixtures derived from
// the base that are cached the same way.
func Lock(ctx context.Context, path string) (unlock func(), err error) { return lock(ctx, path) }
