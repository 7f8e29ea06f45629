package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lablup/bainode/builder/cpio"
)

// busyboxPath is Debian's busybox-static binary, the initramfs's only program.
const busyboxPath = "/bin/busybox"

// cmdlineInit prints the kernel command line to the first serial port as hex
// bytes between markers (so nothing in it is lost or reinterpreted on the
// way) and powers the machine off. It needs no modules: Debian's kernel has
// devtmpfs and the 8250 UART built in.
const cmdlineInit = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
{
  /bin/busybox echo ` + CmdlineBegin + `
  /bin/busybox od -An -tx1 -v /proc/cmdline
  /bin/busybox echo ` + CmdlineEnd + `
  /bin/busybox dmesg | /bin/busybox grep -i 'secure boot' | /bin/busybox sed 's/^/` + SecureBootPrefix + `/'
  /bin/busybox echo ` + CmdlineDone + `
} > /dev/ttyS0
/bin/busybox poweroff -f
`

// Markers around the hex dump of /proc/cmdline on the serial console.
const (
	CmdlineBegin = "BAINODE-CMDLINE-BEGIN"
	CmdlineEnd   = "BAINODE-CMDLINE-END"
)

// CmdlineInitramfs returns the path of a tiny initramfs (busybox and an
// /init) that prints /proc/cmdline to ttyS0 and powers off; read it back with
// ParseCmdline. It is built once per recipe (the init script and busybox's
// bytes) under the cache dir and shared by every test that boots a kernel
// only to see what command line reached it.
func CmdlineInitramfs(ctx context.Context) (string, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return "", fmt.Errorf("%w: %v (package busybox-static)", ErrHost, err)
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(cmdlineInit), bb} {
		fmt.Fprintf(h, "%d\n", len(part))
		h.Write(part)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(cache, "cmdline-initramfs")
	path := filepath.Join(root, hex.EncodeToString(h.Sum(nil))[:16]+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(ctx, path+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	w := cpio.NewArchive()
	w.Dir("proc", 0o755)
	// The kernel opens dev/console for init's stdio.
	w.Add(cpio.Entry{Name: "dev/console", Mode: cpio.ModeChar | 0o600, DevMajor: 5, DevMinor: 1})
	w.File("bin/busybox", 0o755, bb)
	w.File("init", 0o755, []byte(cmdlineInit))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(root, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// SecureBootPrefix starts each kernel message about Secure Boot ("Secure
// boot enabled" or "disabled" on EFI boots), printed after the dump.
const SecureBootPrefix = "BAINODE-SECUREBOOT: "

// CmdlineDone follows everything the initramfs prints.
const CmdlineDone = "BAINODE-CMDLINE-DONE"

// ParseCmdline finds the command line CmdlineInitramfs printed in a serial
// log. ok is false until the whole dump has arrived.
func ParseCmdline(serial string) (cmdline string, ok bool, err error) {
	_, rest, found := strings.Cut(serial, CmdlineBegin)
	if !found {
		return "", false, nil
	}
	dump, tail, found := strings.Cut(rest, CmdlineEnd)
	if !found || !strings.Contains(tail, CmdlineDone) {
		return "", false, nil
	}
	var b []byte
	for _, f := range strings.Fields(dump) {
		v, err := strconv.ParseUint(f, 16, 8)
		if err != nil {
			return "", false, fmt.Errorf("cmdline dump: %q is not a hex byte", f)
		}
		b = append(b, byte(v))
	}
	// The kernel ends /proc/cmdline with a newline of its own.
	s, trimmed := strings.CutSuffix(string(b), "\n")
	if !trimmed {
		return "", false, errors.New("cmdline dump: no trailing newline")
	}
	return s, true, nil
}
