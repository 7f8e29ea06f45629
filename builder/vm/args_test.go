package vm

import (
	"slices"
	"strings"
	"testing"
)

// common is the argv head every config shares.
var common = []string{"-nodefaults", "-no-user-config", "-display", "none", "-machine", "q35"}

// tail is the argv end every config shares, serial log set to /log.
var serialTail = []string{
	"-chardev", "stdio,id=serial0,signal=off,logfile=/log",
	"-serial", "chardev:serial0", "-monitor", "none", "-device", "virtio-rng-pci",
}

func argv(parts ...[]string) []string { return slices.Concat(parts...) }

func TestArgs(t *testing.T) {
	tcg := []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	user := []string{"-netdev", "user,id=net0,restrict=on", "-device", "virtio-net-pci,netdev=net0"}

	tests := []struct {
		name string
		cfg  Config
		want []string
	}{{
		name: "minimal disk boot",
		cfg:  Config{Disk: "/img/base.qcow2", DiskFormat: FormatQCOW2, SerialLog: "/log"},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1",
			"-drive", "file=/img/base.qcow2,format=qcow2,if=virtio"}, user, serialTail),
	}, {
		name: "kvm, sizes, no network, no reboot",
		cfg: Config{Disk: "d.raw", DiskFormat: FormatRaw, DiskCache: "none", Accel: KVM, MemoryMiB: 2048, CPUs: 2,
			NoNetwork: true, NoReboot: true, SerialLog: "/log"},
		want: argv(common, []string{"-accel", "kvm", "-cpu", "host", "-m", "2048", "-smp", "2",
			"-drive", "file=d.raw,format=raw,cache=none,if=virtio", "-nic", "none"}, serialTail, []string{"-no-reboot"}),
	}, {
		name: "direct kernel boot without disk",
		cfg: Config{Kernel: "/k/vmlinuz", Initrd: "/k/initrd.img", Append: "console=ttyS0 root=/dev/vda1",
			NoNetwork: true, SerialLog: "/log"},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1",
			"-kernel", "/k/vmlinuz", "-initrd", "/k/initrd.img", "-append", "console=ttyS0 root=/dev/vda1",
			"-nic", "none"}, serialTail),
	}, {
		name: "uefi and drives",
		cfg: Config{Disk: "/d.qcow2", DiskFormat: FormatQCOW2, Firmware: UEFI,
			OVMFCode: "/fw/CODE.fd", OVMFVars: "/tmp/VARS.fd", SerialLog: "/log",
			Drives: []Drive{
				{Path: "/seed.iso", Format: FormatRaw, Media: MediaCDROM},
				{Path: "/payload.raw", Format: FormatRaw, ReadOnly: true},
				{Path: "/scratch.qcow2", Format: FormatQCOW2, Cache: "unsafe"},
			}},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1",
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
			"-drive", "if=pflash,format=raw,unit=1,file=/tmp/VARS.fd",
			"-drive", "file=/d.qcow2,format=qcow2,if=virtio",
			"-drive", "file=/seed.iso,format=raw,if=ide,media=cdrom,readonly=on",
			"-drive", "file=/payload.raw,format=raw,if=virtio,readonly=on",
			"-drive", "file=/scratch.qcow2,format=qcow2,cache=unsafe,if=virtio",
		}, user, serialTail),
	}, {
		name: "forwards and smbios serial",
		cfg: Config{Disk: "/d.qcow2", DiskFormat: FormatQCOW2, SerialLog: "/log",
			SMBIOSSerial: "ds=nocloud;s=http://10.0.2.100/seed/",
			HostForwards: []HostForward{{HostPort: 2222, GuestPort: 22}, {Proto: "udp", HostPort: 5353, GuestPort: 53}},
			GuestForwards: []GuestForward{
				{GuestAddr: "10.0.2.100:80", HostAddr: "127.0.0.1:8080"},
				{GuestAddr: "10.0.2.101:80", Cmd: "nc 127.0.0.1 9090"},
			}},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1",
			"-drive", "file=/d.qcow2,format=qcow2,if=virtio",
			"-netdev", "user,id=net0,restrict=on" +
				",hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.1:5353-:53" +
				",guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080" +
				",guestfwd=tcp:10.0.2.101:80-cmd:nc 127.0.0.1 9090",
			"-device", "virtio-net-pci,netdev=net0",
			"-smbios", "type=1,serial=ds=nocloud;s=http://10.0.2.100/seed/",
		}, serialTail),
	}, {
		name: "commas in paths and values are doubled",
		cfg: Config{Disk: "/a,b/disk.raw", DiskFormat: FormatRaw, NoNetwork: true,
			SMBIOSSerial: "x,y", SerialLog: "/l,og"},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1",
			"-drive", "file=/a,,b/disk.raw,format=raw,if=virtio", "-nic", "none",
			"-smbios", "type=1,serial=x,,y",
			"-chardev", "stdio,id=serial0,signal=off,logfile=/l,,og",
			"-serial", "chardev:serial0", "-monitor", "none", "-device", "virtio-rng-pci"}),
	}, {
		name: "secure boot netboot",
		cfg: Config{Kernel: "/k", Firmware: UEFI, SecureBoot: true, OVMFCode: "/fw/CODE.ms.fd", OVMFVars: "/tmp/VARS.fd",
			SerialLog: "/log", TFTP: "/tftp", BootFile: "bootx64.efi"},
		want: argv([]string{"-nodefaults", "-no-user-config", "-display", "none",
			"-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"}, tcg,
			[]string{"-m", "1024", "-smp", "1",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.ms.fd",
				"-drive", "if=pflash,format=raw,unit=1,file=/tmp/VARS.fd",
				"-kernel", "/k",
				"-netdev", "user,id=net0,restrict=on,tftp=/tftp,bootfile=bootx64.efi",
				"-device", "virtio-net-pci,netdev=net0,romfile=", "-boot", "order=nc"}, serialTail),
	}, {
		name: "net dump",
		cfg:  Config{Disk: "/d.qcow2", DiskFormat: FormatQCOW2, SerialLog: "/log", NetDump: "/w,d/net.pcap"},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1",
			"-drive", "file=/d.qcow2,format=qcow2,if=virtio"}, user,
			[]string{"-object", "filter-dump,id=netdump0,netdev=net0,file=/w,,d/net.pcap"}, serialTail),
	}, {
		name: "no serial log",
		cfg:  Config{Kernel: "/k", NoNetwork: true},
		want: argv(common, tcg, []string{"-m", "1024", "-smp", "1", "-kernel", "/k", "-nic", "none",
			"-chardev", "stdio,id=serial0,signal=off",
			"-serial", "chardev:serial0", "-monitor", "none", "-device", "virtio-rng-pci"}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.cfg)
			if err != nil {
				t.Fatalf("Args: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Args:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestArgsValidation(t *testing.T) {
	disk := Config{Disk: "/d.qcow2", DiskFormat: FormatQCOW2}
	with := func(f func(*Config)) Config {
		c := disk
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"nothing to boot", Config{}, []string{"Disk: required unless Kernel is set"}},
		{"missing format", Config{Disk: "/d"}, []string{"DiskFormat: required (raw or qcow2)"}},
		{"bad format", with(func(c *Config) { c.DiskFormat = "vmdk" }), []string{`DiskFormat: "vmdk" is not raw or qcow2`}},
		{"overlay without disk", Config{Kernel: "/k", Overlay: "/o"}, []string{"Disk: empty but DiskFormat or Overlay is set"}},
		{"bad drives", with(func(c *Config) {
			c.Drives = []Drive{{Format: FormatRaw}, {Path: "/x", Format: "iso", Media: "floppy", Cache: "fast"}}
		}), []string{"Drives[0].Path: required", `Drives[1].Format: "iso" is not raw or qcow2`, `Drives[1].Media: "floppy" is not`, `Drives[1].Cache: "fast" is not a QEMU cache mode`}},
		{"overlay on a read-only drive", with(func(c *Config) {
			c.Drives = []Drive{{Path: "/x", Format: FormatRaw, ReadOnly: true, Overlay: "/o"}}
		}), []string{"Drives[0].Overlay: set on a read-only drive"}},
		{"bad disk cache", with(func(c *Config) { c.DiskCache = "yes" }), []string{`DiskCache: "yes" is not a QEMU cache mode`}},
		{"uefi without firmware", with(func(c *Config) { c.Firmware = UEFI }), []string{"OVMFCode: required", "OVMFVars: required"}},
		{"bios with firmware", with(func(c *Config) { c.OVMFCode = "/c" }), []string{`OVMFCode: set but Firmware is not "uefi"`}},
		{"secure boot on bios", with(func(c *Config) { c.SecureBoot = true }), []string{`SecureBoot: set but Firmware is not "uefi"`}},
		{"bad firmware", with(func(c *Config) { c.Firmware = "coreboot" }), []string{`Firmware: "coreboot" is not`}},
		{"initrd and append without kernel", with(func(c *Config) { c.Initrd, c.Append = "/i", "quiet" }),
			[]string{"Initrd: set without Kernel", "Append: set without Kernel"}},
		{"tiny memory", with(func(c *Config) { c.MemoryMiB = 64 }), []string{"MemoryMiB: 64 is below 128"}},
		{"negative cpus", with(func(c *Config) { c.CPUs = -1 }), []string{"CPUs: -1 is not between 1 and 64"}},
		{"bad accel", with(func(c *Config) { c.Accel = "hvf" }), []string{`Accel: "hvf" is not "tcg" or "kvm"`}},
		{"forwards without network", with(func(c *Config) {
			c.NoNetwork = true
			c.HostForwards = []HostForward{{HostPort: 1, GuestPort: 1}}
		}), []string{"NoNetwork: set together with forwards"}},
		{"guest forward outside user net", with(func(c *Config) {
			c.GuestForwards = []GuestForward{{GuestAddr: "192.168.1.1:80", HostAddr: "127.0.0.1:80"}}
		}), []string{"GuestForwards[0].GuestAddr: 192.168.1.1 is outside 10.0.2.0/24"}},
		{"guest forward to another host", with(func(c *Config) {
			c.GuestForwards = []GuestForward{{GuestAddr: "10.0.2.100:80", HostAddr: "10.1.1.1:80"}}
		}), []string{"GuestForwards[0].HostAddr: 10.1.1.1 is not 127.0.0.1"}},
		{"guest forward with both targets", with(func(c *Config) {
			c.GuestForwards = []GuestForward{{GuestAddr: "10.0.2.100:80", HostAddr: "127.0.0.1:80", Cmd: "nc"}}
		}), []string{"GuestForwards[0]: HostAddr and Cmd are both set"}},
		{"guest forward without target or port", with(func(c *Config) {
			c.GuestForwards = []GuestForward{{GuestAddr: "10.0.2.100"}}
		}), []string{`GuestForwards[0].GuestAddr: "10.0.2.100" is not ip:port`, "GuestForwards[0]: one of HostAddr and Cmd is required"}},
		{"bad host forward", with(func(c *Config) {
			c.HostForwards = []HostForward{{Proto: "sctp", HostPort: 0, GuestPort: 70000}}
		}), []string{`HostForwards[0].Proto: "sctp" is not tcp or udp`, "HostForwards[0].HostPort: 0 is not a port", "HostForwards[0].GuestPort: 70000 is not a port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.cfg)
			if err == nil {
				t.Fatalf("Args = %q, want an error", got)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
