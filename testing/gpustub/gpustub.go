// Package gpustub builds stand-ins for the NVIDIA driver, for bainode's GPU
// tests on machines without a GPU: tiny out-of-tree kernel modules named
// nvidia and nvidia-uvm, compiled against the Debian test base's own
// kernel headers (from Debian's archive, via apt-get download), either for
// that kernel or stamped with another kernel's release, and .debs that
// carry them.
//
// Built modules are cached under the user cache dir, keyed by a hash of
// their recipe, behind a file lock, like the VM base (testing/qemu).
package gpustub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/lablup/bainode/testing/qemu"
)

// Names of the stand-in modules: the driver's own, so the gate runs with
// its defaults.
var Names = []string{"nvidia", "nvidia-uvm"}

// source is each module: it loads and does nothing.
const source = `#include <linux/module.h>
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("bainode stand-in for the NVIDIA driver");
static int __init stub_init(void) { return 0; }
static void __exit stub_exit(void) {}
module_init(stub_init);
module_exit(stub_exit);
`

// ErrHost marks what this host lacks (a tool, the Debian archive).
var ErrHost = errors.New("host cannot build the stand-in modules")

// Modules returns a directory with nvidia.ko and nvidia-uvm.ko compiled
// against the headers of kernel (a Debian release like 6.1.0-57-amd64),
// carrying the vermagic of stamp: stamp == kernel gives modules that load
// in that kernel, another stamp gives modules made for another kernel.
func Modules(ctx context.Context, kernel, stamp string) (string, error) {
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`).MatchString(kernel + stamp) {
		return "", fmt.Errorf("gpustub: bad kernel release %q or stamp %q", kernel, stamp)
	}
	cache, err := qemu.CacheDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", source, strings.Join(Names, " "), kernel, stamp)
	dir := filepath.Join(cache, "gpustub", "modules-"+hex.EncodeToString(h.Sum(nil))[:16])
	if done(dir) {
		return dir, nil
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if done(dir) {
		return dir, nil
	}
	hdr, err := headers(ctx, filepath.Join(cache, "gpustub"), kernel)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// A copy of the flavour's headers, its release stamped: vermagic is
	// UTS_RELEASE from include/generated/utsrelease.h.
	kdir := filepath.Join(filepath.Dir(hdr), "stamp-"+filepath.Base(tmp))
	if err := run(ctx, "", "cp", "-a", hdr, kdir); err != nil {
		return "", err
	}
	defer os.RemoveAll(kdir)
	uts := filepath.Join(kdir, "include", "generated", "utsrelease.h")
	if err := os.WriteFile(uts, []byte(fmt.Sprintf("#define UTS_RELEASE %q\n", stamp)), 0o644); err != nil {
		return "", err
	}
	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	var kbuild []string
	for _, n := range Names {
		if err := os.WriteFile(filepath.Join(src, n+".c"), []byte(source), 0o644); err != nil {
			return "", err
		}
		kbuild = append(kbuild, n+".o")
	}
	if err := os.WriteFile(filepath.Join(src, "Kbuild"), []byte("obj-m := "+strings.Join(kbuild, " ")+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := run(ctx, "", "make", "-s", "-C", kdir, "M="+src, "modules"); err != nil {
		return "", err
	}
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	for _, n := range Names {
		if err := os.Rename(filepath.Join(src, n+".ko"), filepath.Join(out, n+".ko")); err != nil {
			return "", err
		}
		v, err := Vermagic(ctx, filepath.Join(out, n+".ko"))
		if err != nil {
			return "", err
		}
		if v != stamp {
			return "", fmt.Errorf("gpustub: %s.ko has vermagic %q, want %q", n, v, stamp)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "done"), []byte(stamp+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	return dir, os.Rename(out, dir)
}

// Vermagic is the release a module was built for: the first word of
// `modinfo -F vermagic`.
func Vermagic(ctx context.Context, ko string) (string, error) {
	out, err := exec.CommandContext(ctx, "modinfo", "-F", "vermagic", ko).Output()
	if err != nil {
		return "", fmt.Errorf("modinfo %s: %w", ko, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "", fmt.Errorf("modinfo %s: no vermagic", ko)
	}
	return f[0], nil
}

func done(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "done"))
	return err == nil
}

// headers returns the flavour's headers directory for kernel, unpacked
// from Debian's linux-headers-<kernel> and what it depends on of its own
// (the -common headers, linux-kbuild), cached per kernel release.
func headers(ctx context.Context, root, kernel string) (string, error) {
	dir := filepath.Join(root, "headers-"+kernel)
	kdir := filepath.Join(dir, "usr", "src", "linux-headers-"+kernel)
	if done(dir) {
		return kdir, nil
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if done(dir) {
		return kdir, nil
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "make", "modinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%w: %s not found", ErrHost, tool)
		}
	}
	pkg := "linux-headers-" + kernel
	deps, err := exec.CommandContext(ctx, "apt-cache", "depends", "--no-recommends", "--no-suggests", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("%w: apt-cache depends %s: %v (is apt-get update done?)", ErrHost, pkg, err)
	}
	pkgs := []string{pkg}
	for _, m := range regexp.MustCompile(`(?m)^\s+Depends: (linux-(?:headers|kbuild)-\S+)$`).FindAllStringSubmatch(string(deps), -1) {
		pkgs = append(pkgs, m[1])
	}
	tmp, err := os.MkdirTemp(root, ".headers-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	debs := filepath.Join(tmp, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", err
	}
	if err := run(ctx, debs, "apt-get", append([]string{"download", "-q", "-o", "APT::Sandbox::User=root"}, pkgs...)...); err != nil {
		return "", fmt.Errorf("%w: %v", ErrHost, err)
	}
	out := filepath.Join(tmp, "root")
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, f := range files {
		if err := run(ctx, "", "dpkg-deb", "-x", f, out); err != nil {
			return "", err
		}
	}
	// The flavour's Makefile includes the -common tree by its absolute
	// path on an installed system: point it at the unpacked one.
	mk := filepath.Join(out, "usr", "src", "linux-headers-"+kernel, "Makefile")
	b, err := os.ReadFile(mk)
	if err != nil {
		return "", fmt.Errorf("%s: %w", pkg, err)
	}
	b = bytes.ReplaceAll(b, []byte(" /usr/src/"), []byte(" "+filepath.Join(dir, "usr", "src")+"/"))
	if err := os.WriteFile(mk, b, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "done"), []byte(strings.Join(pkgs, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	return kdir, os.Rename(out, dir)
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := strings.TrimSpace(string(out))
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, s)
	}
	return nil
}

func lock(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
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

// Deb is a .deb to build: files maps a path in the package to a local
// file, and Postinst, if set, is the body of a /bin/sh postinst.
type Deb struct {
	Name, Version, Arch string
	Depends, Recommends string
	Files               map[string]string
	Postinst            string
}

// Build writes the package into dir and returns its path.
func (d Deb) Build(ctx context.Context, dir string) (string, error) {
	stage, err := os.MkdirTemp(dir, ".deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	for dst, src := range d.Files {
		p := filepath.Join(stage, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", err
		}
	}
	if d.Arch == "" {
		d.Arch = "all"
	}
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: bainode tests <tests@bainode.invalid>\n", d.Name, d.Version, d.Arch)
	if d.Depends != "" {
		ctl += "Depends: " + d.Depends + "\n"
	}
	if d.Recommends != "" {
		ctl += "Recommends: " + d.Recommends + "\n"
	}
	ctl += "Section: misc\nPriority: optional\nDescription: bainode stand-in " + d.Name + "\n"
	if err := os.MkdirAll(filepath.Join(stage, "DEBIAN"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(stage, "DEBIAN", "control"), []byte(ctl), 0o644); err != nil {
		return "", err
	}
	if d.Postinst != "" {
		if err := os.WriteFile(filepath.Join(stage, "DEBIAN", "postinst"), []byte("#!/bin/sh\nset -e\n"+d.Postinst+"\n"), 0o755); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Arch))
	if err := run(ctx, "", "dpkg-deb", "--root-owner-group", "-Zxz", "--build", stage, out); err != nil {
		return "", err
	}
	return out, nil
}
