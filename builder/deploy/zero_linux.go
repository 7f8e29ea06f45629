package deploy

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const blkZeroOut = 0x127f // _IO(0x12, 127)

// zeroRange makes [off, off+n) read as zeros without sending the zeros:
// BLKZEROOUT on a block device (the kernel falls back to writing them),
// a punched hole in a file.
func zeroRange(f *os.File, off, n int64, block bool) error {
	if block {
		r := [2]uint64{uint64(off), uint64(n)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), blkZeroOut, uintptr(unsafe.Pointer(&r))); e == 0 {
			return nil
		}
	} else if unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n) == nil {
		return nil
	}
	return writeZeros(f, off, n)
}

func reboot() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}
