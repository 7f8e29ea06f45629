package cloudinit

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lablup/bainode/testing/qemu"
)

//go:embed install-tree.sh
var installTree []byte

// VMBase returns the VM test base with Debian's cloud-init replaced by this
// tree as Ubuntu's package lays it out: cloud.cfg and the systemd units
// and generator rendered for variant ubuntu, ds-identify and the helpers in
// /usr/lib/cloud-init, the console scripts; for 20.1 also Jinja2 2.x and
// the collections aliases (README of the trees). It is made offline from a
// raw copy of the base (loop mount, chroot dpkg --purge; no VM boot) and
// cached as a qcow2 (about 730 MB) by the hash of its recipe: the base's,
// the tarball's sha256 and install-tree.sh.
func (tr *Tree) VMBase(ctx context.Context, base qemu.Image, logw io.Writer) (qemu.Image, error) {
	if tr.Dir == "" {
		return base, nil // Debian's own package is the base's
	}
	h := sha256.New()
	for _, part := range []string{filepath.Base(base.Dir), tr.sum, tr.libs, string(installTree), string(shim)} {
		fmt.Fprintf(h, "%d\n%s", len(part), part)
	}
	cache, err := qemu.CacheDir()
	if err != nil {
		return qemu.Image{}, err
	}
	root := filepath.Join(cache, "vm-base-cloudinit")
	dir := filepath.Join(root, tr.Name+"-"+hex.EncodeToString(h.Sum(nil))[:32])
	img := base
	img.Dir, img.Disk = dir, filepath.Join(dir, "disk.qcow2")
	if _, err := os.Stat(img.Disk); err == nil {
		now := time.Now() // the mtime says when it was last used (prune)
		os.Chtimes(img.Disk, now, now)
		return img, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return qemu.Image{}, err
	}
	unlock, err := qemu.Lock(ctx, dir+".lock")
	if err != nil {
		return qemu.Image{}, err
	}
	defer unlock()
	if _, err := os.Stat(img.Disk); err == nil {
		return img, nil // built while we waited for the lock
	}
	start := time.Now()
	if err := tr.buildVMBase(ctx, base, dir, logw); err != nil {
		return qemu.Image{}, fmt.Errorf("%s: vm base: %w", tr.Name, err)
	}
	fmt.Fprintf(logw, "%s: vm base built in %s: %s\n", tr.Name, time.Since(start).Round(time.Second), dir)
	// Other recipes of this tree (about 730 MB each) that no run used for a
	// day: branches share the cache, so a fresh one may still be in use.
	old, _ := filepath.Glob(filepath.Join(root, tr.Name+"-*", "disk.qcow2"))
	for _, d := range old {
		if fi, err := os.Stat(d); err == nil && filepath.Dir(d) != dir && time.Since(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Dir(d))
			os.Remove(filepath.Dir(d) + ".lock")
		}
	}
	return img, nil
}

func (tr *Tree) buildVMBase(ctx context.Context, base qemu.Image, dir string, logw io.Writer) error {
	stale, _ := filepath.Glob(dir + ".tmp-*")
	for _, s := range stale {
		os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	stage := filepath.Join(tmp, "stage")
	units := filepath.Join(stage, "systemd")
	if err := os.MkdirAll(units, 0o755); err != nil {
		return err
	}
	if err := tr.CloudCfg(ctx, filepath.Join(stage, "cloud.cfg")); err != nil {
		return err
	}
	srcs, _ := filepath.Glob(filepath.Join(tr.Dir, "systemd", "*"))
	for _, src := range srcs {
		if name, ok := strings.CutSuffix(filepath.Base(src), ".tmpl"); ok {
			if err := tr.Render(ctx, src, filepath.Join(units, name)); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(units, filepath.Base(src)), b, 0o644); err != nil {
			return err
		}
	}
	raw := filepath.Join(tmp, "disk.raw")
	script := filepath.Join(tmp, "install-tree.sh")
	if err := os.WriteFile(script, installTree, 0o755); err != nil {
		return err
	}
	run := func(name string, env []string, args ...string) error {
		c := exec.CommandContext(ctx, name, args...)
		c.Env = append(os.Environ(), env...)
		c.Stdout, c.Stderr = logw, logw
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if err := run("qemu-img", nil, "convert", "-f", "qcow2", "-O", "raw", base.Disk, raw); err != nil {
		return err
	}
	env := []string{"RAW=" + raw, "TREE=" + tr.Dir, "STAGE=" + stage, "LANG=C.UTF-8"}
	if tr.libs != "" {
		env = append(env, "LIBS="+tr.libs, "ALIASES=1")
	}
	if err := run("/bin/bash", env, script); err != nil {
		return err
	}
	// A whole image, not an overlay of the base: convert -B would still
	// write every allocated cluster of a raw source, and this way a pruned
	// base cannot break it.
	out := filepath.Join(tmp, "disk.qcow2")
	if err := run("qemu-img", nil, "convert", "-f", "raw", "-O", "qcow2", raw, out); err != nil {
		return err
	}
	if err := os.Remove(raw); err != nil {
		return err
	}
	os.RemoveAll(stage)
	os.Remove(script)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
