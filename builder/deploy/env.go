// Package deploy is bainode's image deploy: the deploy environment (a
// kernel and an initramfs assembled here, in the manner of Tinkerbell's
// hook and image2disk) and the agent it runs, which writes a baked role
// image to the node's disk.
package deploy

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lablup/bainode/builder/atomicfile"
	"github.com/lablup/bainode/builder/cpio"
)

//go:embed env/init env/udhcpc
var envFiles embed.FS

// EnvOptions are the packaged inputs of the deploy environment.
type EnvOptions struct {
	// Kernel is a bzImage, or a linux-image .deb holding boot/vmlinuz-*.
	Kernel string
	// Modules are where the kernel's modules come from: the same
	// linux-image .deb (or its linux-modules .deb), or an initramfs built
	// for that kernel (Debian's netboot initrd.gz, an initrd.img).
	Modules []string
	// Busybox is a static busybox, or the busybox-static .deb.
	Busybox string
	// Agent is a static bainode binary; it runs as "bainode deploy-agent".
	Agent string
	// Want overrides Modules' default list of drivers (tests).
	Want []string
}

// Env is an assembled deploy environment.
type Env struct {
	Kernel, Initrd string // paths
	KernelVersion  string
	Modules        []string // loaded in this order
	Missing        []string // wanted but absent (built in, or not in this kernel)
}

// Assemble writes vmlinuz and initrd.img into dir. The initramfs is
// reproducible: the same inputs give the same bytes.
func Assemble(o EnvOptions, dir string) (Env, error) {
	kernel, err := readKernel(o.Kernel)
	if err != nil {
		return Env{}, err
	}
	tree, err := readModules(o.Modules...)
	if err != nil {
		return Env{}, err
	}
	want := o.Want
	if want == nil {
		want = Modules
	}
	order, missing, err := tree.pick(want)
	if err != nil {
		return Env{}, err
	}
	if kv := kernelVersion(kernel); kv != "" && !strings.HasPrefix(kv, tree.version) {
		return Env{}, fmt.Errorf("kernel %s is version %s but the modules are for %s", o.Kernel, kv, tree.version)
	}
	busybox, err := readBusybox(o.Busybox)
	if err != nil {
		return Env{}, err
	}
	agent, err := os.ReadFile(o.Agent)
	if err != nil {
		return Env{}, err
	}
	if err := checkStatic(agent); err != nil {
		return Env{}, fmt.Errorf("agent %s: %w", o.Agent, err)
	}

	a := cpio.NewArchive()
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "etc/bainode", "sbin", "usr/bin", "usr/sbin"} {
		a.Dir(d, 0o755)
	}
	a.Add(cpio.Entry{Name: "dev/console", Mode: cpio.ModeChar | 0o600, DevMajor: 5, DevMinor: 1})
	init, _ := envFiles.ReadFile("env/init")
	udhcpc, _ := envFiles.ReadFile("env/udhcpc")
	a.File("init", 0o755, init)
	a.File("etc/bainode/udhcpc", 0o755, udhcpc)
	a.File("bin/busybox", 0o755, busybox)
	a.Symlink("bin/sh", "busybox")
	a.File("bin/bainode", 0o755, agent)
	var list bytes.Buffer
	for _, m := range order {
		mf := tree.files[m]
		a.File("lib/modules/"+tree.version+"/"+mf.rel, 0o644, mf.data)
		list.WriteString(mf.rel + "\n")
	}
	a.File("etc/bainode/modules", 0o644, list.Bytes())

	var img bytes.Buffer
	// gzip: every kernel bainode targets can unpack it (zstd needs 5.9).
	zw, _ := gzip.NewWriterLevel(&img, gzip.BestCompression)
	if _, err := a.WriteTo(zw); err != nil {
		return Env{}, err
	}
	if err := zw.Close(); err != nil {
		return Env{}, err
	}
	env := Env{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		KernelVersion: tree.version, Modules: order, Missing: missing}
	if err := atomicfile.Write(env.Kernel, kernel, 0o644); err != nil {
		return Env{}, err
	}
	if err := atomicfile.Write(env.Initrd, img.Bytes(), 0o644); err != nil {
		return Env{}, err
	}
	return env, nil
}

var reVmlinuz = regexp.MustCompile(`^\.?/?boot/vmlinuz-`)

func readKernel(p string) ([]byte, error) {
	if !strings.HasSuffix(p, ".deb") {
		return os.ReadFile(p)
	}
	var k []byte
	err := debFiles(p, func(name string, data []byte) error {
		if reVmlinuz.MatchString(name) {
			k = data
		}
		return nil
	})
	if err == nil && k == nil {
		err = errors.New("no boot/vmlinuz-* in the package")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return k, nil
}

func readBusybox(p string) ([]byte, error) {
	if !strings.HasSuffix(p, ".deb") {
		b, err := os.ReadFile(p)
		if err == nil {
			err = checkStatic(b)
		}
		if err != nil {
			return nil, fmt.Errorf("busybox %s: %w", p, err)
		}
		return b, nil
	}
	var b []byte
	err := debFiles(p, func(name string, data []byte) error {
		if strings.TrimPrefix(name, ".") == "/bin/busybox" || name == "bin/busybox" {
			b = data
		}
		return nil
	})
	if err == nil && b == nil {
		err = errors.New("no /bin/busybox in the package")
	}
	if err == nil {
		err = checkStatic(b)
	}
	if err != nil {
		return nil, fmt.Errorf("busybox %s: %w", p, err)
	}
	return b, nil
}

// checkStatic refuses a binary that needs a dynamic loader: the
// initramfs has no libc.
func checkStatic(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (build it with CGO_ENABLED=0)")
		}
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("built for %s, want x86-64", f.Machine)
	}
	return nil
}

// kernelVersion reads the version string of an x86 bzImage header.
func kernelVersion(k []byte) string {
	if len(k) < 0x210 || string(k[0x202:0x206]) != "HdrS" {
		return ""
	}
	off := int(k[0x20e]) | int(k[0x20f])<<8
	off += 0x200
	if off >= len(k) {
		return ""
	}
	end := bytes.IndexByte(k[off:], ' ')
	if end < 0 {
		return ""
	}
	return string(k[off : off+end])
}
