package qemu

import (
	"io"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/vm"
)

// Smoke is the part of smoke.Options every smoke run of the test base
// sets: the disk to boot (the base itself when empty), booted by its own
// loader or, when the base was built without one, directly from its
// kernel; the accelerator; progress lines in the test log.
func Smoke(t testing.TB, img Image, disk string, accel vm.Accel) smoke.Options {
	if disk == "" {
		disk = img.Disk
	}
	o := smoke.Options{Image: disk, Accel: accel, Progress: Log(t)}
	if !img.Bootloader {
		o.Kernel, o.Initrd, o.Append = img.Kernel, img.Initrd, img.Append
	}
	return o
}

// Log writes each line written to it to the test log.
func Log(t testing.TB) io.Writer { return testLog{t} }

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
