// Package vm runs x86-64 QEMU guests for bainode's smoke tests and bakes.
//
// Args is a pure function from Config to qemu-system-x86_64's argv. Start
// adds the side effects around it: a throwaway qcow2 overlay so the input
// image is never written, a private temp dir, the serial console in a log
// file and in memory, and a kill by PID on every exit path.
package vm

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// Firmware selects what the guest boots through.
type Firmware string

const (
	BIOS Firmware = "bios" // SeaBIOS, QEMU's default
	UEFI Firmware = "uefi" // OVMF from pflash
)

// Media is how a drive is presented to the guest.
type Media string

const (
	MediaDisk  Media = "disk"  // virtio block device
	MediaCDROM Media = "cdrom" // ATAPI CD-ROM, always read-only
)

// Disk image formats QEMU is told explicitly, so it never probes a raw image.
const (
	FormatRaw   = "raw"
	FormatQCOW2 = "qcow2"
)

// Config describes one guest. The zero value of optional fields picks the
// default noted on the field.
type Config struct {
	// Disk is the boot disk. Start runs the guest on a qcow2 overlay backed by
	// it, so it is only read. Optional when Kernel is set.
	Disk string
	// DiskFormat is FormatRaw or FormatQCOW2 (see DetectFormat).
	DiskFormat string
	// Overlay is where Start creates the overlay for Disk. Empty means inside
	// the machine's temp dir, removed by Stop; set it to keep the guest's
	// writes (bake).
	Overlay string
	// DiskCache is QEMU's cache mode for Disk (default QEMU's writeback).
	// Start uses "unsafe" for the throwaway overlays in its temp dir: guest
	// flushes then cost nothing, and nobody keeps those writes.
	DiskCache string
	// DiskDiscard passes the guest's discards (fstrim) to Disk, so freed
	// blocks leave the image (bake).
	DiskDiscard bool
	// OverlayClusterSize is the cluster size of Disk's overlay in bytes (0:
	// qemu-img's 64 KiB). A bake uses 4 KiB, the file system's block: QEMU
	// drops a discard smaller than a cluster, so freed 4 KiB blocks amid
	// live data would keep their old bytes.
	OverlayClusterSize int

	// Drives are attached after Disk in order (seeds, payload disks).
	Drives []Drive

	Firmware Firmware // default BIOS
	// OVMFCode and OVMFVars are the UEFI firmware image and a writable copy
	// of its variable store. Start fills them (see FindOVMF) when empty.
	OVMFCode string
	OVMFVars string
	// SecureBoot runs OVMFCode with SMM and a secure variable store, so
	// that a Secure Boot build (OVMF_CODE*.ms.fd with Microsoft's keys in
	// its OVMF_VARS) enforces signatures. The NIC then gets no option ROM:
	// QEMU's iPXE is unsigned, and OVMF's own virtio-net driver netboots.
	SecureBoot bool

	// Kernel, Initrd and Append boot a kernel directly instead of the
	// firmware's boot loader.
	Kernel string
	Initrd string
	Append string

	MemoryMiB int   // default 1024
	CPUs      int   // default 1
	Accel     Accel // default TCG; see ProbeAccel

	// SerialLog receives everything the guest writes to its first serial
	// port (written by QEMU itself). Empty means a file in the temp dir, which
	// Stop removes: set it to keep the log of a failed boot.
	SerialLog string

	// Network is always QEMU user-mode networking with restrict=on: the guest
	// reaches nothing but the forwards below.
	NoNetwork bool
	// Online drops restrict=on: the guest gets NAT to wherever the host
	// reaches (bainode bake --online only; tests never set it).
	Online        bool
	GuestForwards []GuestForward
	HostForwards  []HostForward
	// NetDump writes every frame of the guest's NIC to this pcap file
	// (QEMU's filter-dump), so a caller can tell what the guest tried.
	NetDump string
	// TFTP and BootFile make QEMU's DHCP offer BootFile from its built-in
	// TFTP server rooted at TFTP, and the guest boot from the network
	// first (the NIC's iPXE ROM), then from its disks.
	TFTP, BootFile string

	// SMBIOSSerial sets the SMBIOS system serial number, which cloud-init
	// reads as its NoCloud "line configuration" (ds=nocloud;s=...).
	SMBIOSSerial string

	// NoReboot makes a guest reboot end QEMU, like a power-off.
	NoReboot bool

	// Console receives the serial console as it arrives (Start only; may be
	// nil). Its write errors are ignored: they must not end the boot.
	Console io.Writer
}

// Drive is an extra block device.
type Drive struct {
	Path     string
	Format   string // FormatRaw or FormatQCOW2
	Media    Media  // default MediaDisk
	ReadOnly bool   // attach as is; otherwise Start puts an overlay in front
	Cache    string // like Config.DiskCache
	// Overlay is where Start creates the overlay, like Config.Overlay:
	// set it to keep the guest's writes (fault tests read them back).
	Overlay string
	discard bool // only the boot disk, through Config.DiskDiscard
}

// GuestForward makes a guest-side address lead to the host. Exactly one of
// HostAddr and Cmd is set.
type GuestForward struct {
	// GuestAddr is the IPv4 address and port the guest connects to, inside
	// the user-mode network (10.0.2.0/24), e.g. "10.0.2.100:80".
	GuestAddr string
	// HostAddr is a 127.0.0.1 port QEMU connects to once, at start: it must
	// already be listening, and all guest connections share that one stream
	// (fine for a keep-alive HTTP server, not for parallel clients).
	HostAddr string
	// Cmd is run by QEMU for each guest connection with the connection as its
	// stdin and stdout, e.g. "nc 127.0.0.1 8080".
	Cmd string
}

// HostForward exposes a guest port on 127.0.0.1 of the host.
type HostForward struct {
	Proto     string // "tcp" (default) or "udp"
	HostPort  int
	GuestPort int
}

// Validate reports every problem in cfg at once; each message starts with
// the field's name.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}

	if cfg.Disk == "" && cfg.Kernel == "" {
		bad("Disk", "required unless Kernel is set")
	}
	if cfg.Disk != "" {
		if err := checkFormat(cfg.DiskFormat); err != nil {
			bad("DiskFormat", "%v", err)
		}
	} else if cfg.DiskFormat != "" || cfg.Overlay != "" {
		bad("Disk", "empty but DiskFormat or Overlay is set")
	}
	if !validCache(cfg.DiskCache) {
		bad("DiskCache", "%q is not a QEMU cache mode", cfg.DiskCache)
	}
	for i, d := range cfg.Drives {
		field := fmt.Sprintf("Drives[%d]", i)
		if !validCache(d.Cache) {
			bad(field+".Cache", "%q is not a QEMU cache mode", d.Cache)
		}
		if d.Path == "" {
			bad(field+".Path", "required")
		}
		if err := checkFormat(d.Format); err != nil {
			bad(field+".Format", "%v", err)
		}
		if d.Overlay != "" && (d.ReadOnly || d.Media == MediaCDROM) {
			bad(field+".Overlay", "set on a read-only drive")
		}
		if d.Media != "" && d.Media != MediaDisk && d.Media != MediaCDROM {
			bad(field+".Media", "%q is not %q or %q", d.Media, MediaDisk, MediaCDROM)
		}
	}

	switch cfg.Firmware {
	case "", BIOS:
		if cfg.OVMFCode != "" || cfg.OVMFVars != "" {
			bad("OVMFCode", "set but Firmware is not %q", UEFI)
		}
	case UEFI:
		if cfg.OVMFCode == "" {
			bad("OVMFCode", "required for Firmware %q (see FindOVMF)", UEFI)
		}
		if cfg.OVMFVars == "" {
			bad("OVMFVars", "required for Firmware %q (a writable copy of OVMF_VARS)", UEFI)
		}
	default:
		bad("Firmware", "%q is not %q or %q", cfg.Firmware, BIOS, UEFI)
	}
	if cfg.SecureBoot && cfg.Firmware != UEFI {
		bad("SecureBoot", "set but Firmware is not %q", UEFI)
	}

	if cfg.Kernel == "" {
		if cfg.Initrd != "" {
			bad("Initrd", "set without Kernel")
		}
		if cfg.Append != "" {
			bad("Append", "set without Kernel")
		}
	}

	if cfg.MemoryMiB != 0 && cfg.MemoryMiB < 128 {
		bad("MemoryMiB", "%d is below 128", cfg.MemoryMiB)
	}
	if cfg.CPUs < 0 || cfg.CPUs > 64 {
		bad("CPUs", "%d is not between 1 and 64", cfg.CPUs)
	}
	if _, err := cfg.Accel.args(); err != nil {
		bad("Accel", "%v", err)
	}

	if cfg.NoNetwork && cfg.Online {
		bad("Online", "set together with NoNetwork")
	}
	if cfg.NoNetwork && (len(cfg.GuestForwards) > 0 || len(cfg.HostForwards) > 0) {
		bad("NoNetwork", "set together with forwards")
	}
	for i, f := range cfg.GuestForwards {
		field := fmt.Sprintf("GuestForwards[%d]", i)
		if err := checkGuestAddr(f.GuestAddr); err != nil {
			bad(field+".GuestAddr", "%v", err)
		}
		switch {
		case f.HostAddr != "" && f.Cmd != "":
			bad(field, "HostAddr and Cmd are both set")
		case f.HostAddr == "" && f.Cmd == "":
			bad(field, "one of HostAddr and Cmd is required")
		case f.HostAddr != "":
			if err := checkLoopback(f.HostAddr); err != nil {
				bad(field+".HostAddr", "%v", err)
			}
		}
	}
	for i, f := range cfg.HostForwards {
		field := fmt.Sprintf("HostForwards[%d]", i)
		if f.Proto != "" && f.Proto != "tcp" && f.Proto != "udp" {
			bad(field+".Proto", "%q is not tcp or udp", f.Proto)
		}
		if f.HostPort < 1 || f.HostPort > 65535 {
			bad(field+".HostPort", "%d is not a port", f.HostPort)
		}
		if f.GuestPort < 1 || f.GuestPort > 65535 {
			bad(field+".GuestPort", "%d is not a port", f.GuestPort)
		}
	}
	return errors.Join(errs...)
}

func validCache(mode string) bool {
	switch mode {
	case "", "writeback", "writethrough", "none", "directsync", "unsafe":
		return true
	}
	return false
}

func checkFormat(f string) error {
	switch f {
	case FormatRaw, FormatQCOW2:
		return nil
	case "":
		return fmt.Errorf("required (%s or %s)", FormatRaw, FormatQCOW2)
	}
	return fmt.Errorf("%q is not %s or %s", f, FormatRaw, FormatQCOW2)
}

// userNet is QEMU's default user-mode network; guestfwd only works inside it.
var userNet = &net.IPNet{IP: net.IPv4(10, 0, 2, 0), Mask: net.CIDRMask(24, 32)}

func checkGuestAddr(addr string) error {
	ip, err := splitIPPort(addr)
	if err != nil {
		return err
	}
	if !userNet.Contains(ip) {
		return fmt.Errorf("%s is outside %s", ip, userNet)
	}
	return nil
}

// checkLoopback keeps forwards on 127.0.0.1: tests must never reach out.
func checkLoopback(addr string) error {
	ip, err := splitIPPort(addr)
	if err != nil {
		return err
	}
	if !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return fmt.Errorf("%s is not 127.0.0.1", ip)
	}
	return nil
}

func splitIPPort(addr string) (net.IP, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q is not ip:port", addr)
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return nil, fmt.Errorf("%q is not an IPv4 address", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("%q is not a port", port)
	}
	return ip, nil
}
