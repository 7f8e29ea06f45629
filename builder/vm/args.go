package vm

import (
	"fmt"
	"strconv"
	"strings"
)

// Args returns qemu-system-x86_64's arguments (without the program name) for
// cfg. It reads no files and starts nothing: Start prepares overlays and
// firmware copies first and then calls it.
//
// The serial console goes to QEMU's stdout (and to SerialLog, written by
// QEMU); there is no display and no monitor.
func Args(cfg Config) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	accel, _ := cfg.Accel.args() // checked by Validate

	mem, cpus := cfg.MemoryMiB, cfg.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 1
	}

	a := []string{
		// Nothing QEMU would add by itself (VGA, default NIC, floppy, config
		// files from the host): the guest gets exactly what is listed here.
		"-nodefaults", "-no-user-config",
		"-display", "none",
	}
	if cfg.SecureBoot {
		// SMM keeps the variable store out of the OS's reach.
		a = append(a, "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on")
	} else {
		a = append(a, "-machine", "q35")
	}
	a = append(a, accel...)
	a = append(a, "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus))

	if cfg.Firmware == UEFI {
		a = append(a,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+escape(cfg.OVMFCode),
			"-drive", "if=pflash,format=raw,unit=1,file="+escape(cfg.OVMFVars))
	}

	if cfg.Kernel != "" {
		a = append(a, "-kernel", cfg.Kernel)
		if cfg.Initrd != "" {
			a = append(a, "-initrd", cfg.Initrd)
		}
		if cfg.Append != "" {
			a = append(a, "-append", cfg.Append)
		}
	}

	if cfg.Disk != "" {
		a = append(a, "-drive", driveOpt(Drive{Path: cfg.Disk, Format: cfg.DiskFormat, Cache: cfg.DiskCache, discard: cfg.DiskDiscard}))
	}
	for _, d := range cfg.Drives {
		a = append(a, "-drive", driveOpt(d))
	}

	if cfg.NoNetwork {
		a = append(a, "-nic", "none")
	} else {
		nic := "virtio-net-pci,netdev=net0"
		if cfg.SecureBoot {
			nic += ",romfile="
		}
		a = append(a, "-netdev", netdevOpt(cfg), "-device", nic)
		if cfg.NetDump != "" {
			a = append(a, "-object", "filter-dump,id=netdump0,netdev=net0,file="+escape(cfg.NetDump))
		}
	}

	if cfg.TFTP != "" && !cfg.NoNetwork {
		a = append(a, "-boot", "order=nc")
	}
	if cfg.SMBIOSSerial != "" {
		a = append(a, "-smbios", "type=1,serial="+escape(cfg.SMBIOSSerial))
	}

	serial := "stdio,id=serial0,signal=off"
	if cfg.SerialLog != "" {
		serial += ",logfile=" + escape(cfg.SerialLog)
	}
	a = append(a,
		"-chardev", serial,
		"-serial", "chardev:serial0",
		"-monitor", "none",
		// Early boot (ssh host keys, Python's random) must not wait for entropy.
		"-device", "virtio-rng-pci",
	)
	if cfg.NoReboot {
		a = append(a, "-no-reboot")
	}
	return a, nil
}

func driveOpt(d Drive) string {
	opt := "file=" + escape(d.Path) + ",format=" + d.Format
	if d.Cache != "" {
		opt += ",cache=" + d.Cache
	}
	if d.Media == MediaCDROM {
		// ide maps to the q35 AHCI controller, which every guest kernel knows.
		return opt + ",if=ide,media=cdrom,readonly=on"
	}
	opt += ",if=virtio"
	if d.discard {
		opt += ",discard=unmap"
	}
	if d.ReadOnly {
		opt += ",readonly=on"
	}
	return opt
}

func netdevOpt(cfg Config) string {
	var b strings.Builder
	if cfg.Online {
		b.WriteString("user,id=net0")
	} else {
		b.WriteString("user,id=net0,restrict=on")
	}
	for _, f := range cfg.HostForwards {
		proto := f.Proto
		if proto == "" {
			proto = "tcp"
		}
		fmt.Fprintf(&b, ",hostfwd=%s:127.0.0.1:%d-:%d", proto, f.HostPort, f.GuestPort)
	}
	if cfg.TFTP != "" {
		b.WriteString(",tftp=" + escape(cfg.TFTP) + ",bootfile=" + escape(cfg.BootFile))
	}
	for _, f := range cfg.GuestForwards {
		target := "tcp:" + f.HostAddr
		if f.Cmd != "" {
			target = "cmd:" + f.Cmd
		}
		b.WriteString(",guestfwd=tcp:" + f.GuestAddr + "-" + escape(target))
	}
	return b.String()
}

// escape doubles commas, QEMU's way of quoting them inside an option value.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
