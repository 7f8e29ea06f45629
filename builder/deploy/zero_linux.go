package deploy

import (
	"os"
	"path/filepath"
	"strings"
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

const cdromEject = 0x5309 // CDROMEJECT

// ejectMedium opens the tray of a CD boot medium (real or a BMC's virtual
// one), so the reboot comes up from the disk whatever the boot order. A
// stick cannot be ejected; the disk guard (deployedAlready) covers it.
func ejectMedium(sys System) {
	dev, err := findMedium(sys.SysBlock, sys.Dev, MediumVolumeID)
	if err != nil || !strings.HasPrefix(filepath.Base(dev), "sr") {
		return
	}
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		sys.Logf("eject %s: %v", dev, err)
		return
	}
	defer f.Close()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), cdromEject, 0); e != 0 {
		sys.Logf("eject %s: %v (remove the medium, or boot from the disk first)", dev, e)
		return
	}
	sys.Logf("ejected the boot medium %s", dev)
}
