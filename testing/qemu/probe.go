package qemu

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/lablup/bainode/builder/cpio"
)

// The probe is a tiny initramfs for boot tests of installer media: it
// prints the kernel command line and the sha256 of the seed files it finds
// on the boot medium to ttyS0, then powers off. It takes seconds under TCG
// where a real installer takes many minutes.
//
// It runs under the base image's kernel (Debian's, signed for Secure Boot)
// with that kernel's modules for CD-ROM and disk, taken from the base's
// initrd: the d-i netboot initrd carries neither isofs nor sr_mod.

// ProbeMarker* frame the probe's report on the console.
const (
	ProbeBegin = "PROBE-BEGIN"
	ProbeEnd   = "PROBE-END"
)

// ProbeSeedFiles are the paths (on the medium) whose sha256 the probe prints.
var ProbeSeedFiles = []string{"nocloud/user-data", "nocloud/meta-data", "autoinstall.yaml"}

// probeModules are what reads an ISO 9660 medium from an AHCI CD-ROM or a
// virtio disk; their dependencies come from modules.dep.
var probeModules = []string{"isofs", "sr_mod", "ahci", "virtio_pci", "virtio_blk"}

func probeInit() string {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m; done
exec >/dev/ttyS0 2>&1
echo "` + ProbeBegin + `"
echo "PROBE cmdline: $(cat /proc/cmdline)"
echo "PROBE secureboot: $(dmesg | grep -o 'Secure boot [a-z]*' | head -n 1)"
mkdir -p /m
found=
i=0
# Under TCG on a loaded host the CD-ROM can take minutes to appear.
while [ $i -lt 240 ] && [ -z "$found" ]; do
	for d in /dev/sr0 /dev/vda /dev/sda; do
		[ -b $d ] || continue
		if mount -t iso9660 -o ro $d /m 2>/dev/null; then found=$d; break; fi
	done
	[ -n "$found" ] || sleep 1
	i=$((i+1))
done
echo "PROBE medium: $found"
if [ -z "$found" ]; then
	echo "PROBE devices: $(ls /dev | tr '\n' ' ')"
	dmesg | grep -iE 'ata[0-9]|sr[0-9]|cdrom|virtio_blk|iso' | tail -n 20
fi
for f in ` + strings.Join(ProbeSeedFiles, " ") + `; do
	[ -f /m/$f ] && echo "PROBE sha256 $(sha256sum /m/$f | cut -d' ' -f1) $f"
done
echo "` + ProbeEnd + `"
poweroff -f
`)
	return b.String()
}

// Probe returns the probe initramfs for img's kernel, building and caching
// it on first use (keyed by the init script and img's initrd).
func Probe(ctx context.Context, img Image) (string, error) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("%w: busybox not found (package busybox-static)", ErrHost)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", probeInit(), strings.Join(probeModules, ","), img.Initrd, img.KernelVersion)
	out := filepath.Join(cache, "probe", hex.EncodeToString(h.Sum(nil))[:16]+".cpio.gz")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(ctx, out+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}

	files, err := initrdFiles(img.Initrd)
	if err != nil {
		return "", fmt.Errorf("probe: read %s: %w", img.Initrd, err)
	}
	modDir := ""
	for p := range files {
		if strings.HasSuffix(p, "/modules.dep") {
			modDir = path.Dir(p)
		}
	}
	if modDir == "" {
		return "", fmt.Errorf("probe: %s has no modules.dep", img.Initrd)
	}
	order, err := moduleClosure(string(files[modDir+"/modules.dep"]), probeModules)
	if err != nil {
		return "", fmt.Errorf("probe: %s: %w", img.Initrd, err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "", err
	}

	cp := cpio.NewArchive()
	for _, d := range []string{"dev", "proc", "sys", "lib/modules", "m"} {
		cp.Dir(d, 0o755)
	}
	cp.File("bin/busybox", 0o755, bb)
	cp.File("init", 0o755, []byte(probeInit()))
	var names []string
	for _, rel := range order {
		data, ok := files[modDir+"/"+rel]
		if !ok {
			return "", fmt.Errorf("probe: %s lacks module %s", img.Initrd, rel)
		}
		name := path.Base(rel)
		cp.File("lib/modules/"+name, 0o644, data)
		names = append(names, name)
	}
	cp.File("modules.order", 0o644, []byte(strings.Join(names, "\n")+"\n"))
	var raw bytes.Buffer
	if _, err := cp.WriteTo(&raw); err != nil {
		return "", err
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, gz.Bytes(), 0o644); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// moduleClosure returns the modules.dep paths of want and their
// dependencies, dependencies first.
func moduleClosure(dep string, want []string) ([]string, error) {
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(dep))
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		name := strings.TrimSuffix(path.Base(mod), ".ko")
		byName[strings.ReplaceAll(name, "-", "_")] = mod
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		// modules.dep lists the deepest dependency last
		d := deps[m]
		for i := len(d) - 1; i >= 0; i-- {
			visit(d[i])
		}
		order = append(order, m)
	}
	for _, w := range want {
		m, ok := byName[w]
		if !ok {
			return nil, fmt.Errorf("module %s not in modules.dep", w)
		}
		visit(m)
	}
	return order, nil
}

// initrdFiles unpacks the regular files of an initramfs.
func initrdFiles(p string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := cpio.WalkInitramfs(p, func(e cpio.Entry) error {
		if e.Mode&cpio.ModeType == cpio.ModeFile {
			files[strings.TrimPrefix(e.Name, "./")] = e.Data
		}
		return nil
	})
	return files, err
}

// Cached returns dir/<kind>/<key>, running build on a fresh directory
// first when it is missing. A file lock keeps parallel test binaries from
// building it twice; the directory appears complete or not at all.
func Cached(ctx context.Context, kind, key string, build func(dir string) error) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, kind, key)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), key+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, dir)
}
