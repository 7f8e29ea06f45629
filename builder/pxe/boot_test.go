package pxe_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/pxe"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/qemu"
)

// diKernel is Debian's netboot kernel (debian-installer-12-netboot-amd64),
// signed by Debian: it stands in for casper's, which Debian does not ship.
const diKernel = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux"

// qemuMAC is the MAC QEMU gives the first NIC.
const qemuMAC = "52:54:00:12:34:56"

// fixtureTree writes a tree for one node the way 'bainode pxe' does, from a
// real ISO9660 image with casper/vmlinuz (Debian's netboot kernel) and
// casper/initrd (an initramfs that prints its command line).
func fixtureTree(t *testing.T) (root string, node pxe.Node, id string) {
	t.Helper()
	for _, tool := range []string{"xorriso"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not found (package xorriso)")
		}
	}
	if _, err := os.Stat(diKernel); err != nil {
		skipOrFail(t, "no netboot kernel (package debian-installer-12-netboot-amd64)")
	}
	loaders, err := pxe.FindLoaders("/")
	if err != nil {
		skipOrFail(t, err.Error())
	}
	initrd, err := qemu.CmdlineInitramfs(t.Context())
	if err != nil {
		skipOrFail(t, err.Error())
	}
	dir := t.TempDir()
	iso := filepath.Join(dir, "live-server.iso")
	out, err := exec.Command("xorriso", "-outdev", iso, "-volid", "Ubuntu-Server fixture",
		"-map", diKernel, "/casper/vmlinuz", "-map", initrd, "/casper/initrd").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	ud, err := os.ReadFile("testdata/cloud-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tree, nodes, err := pxe.Build(pxe.Options{Server: "http://10.0.2.100", Loaders: loaders, ISO: iso, Version: "test"},
		[]pxe.NodeInput{{Hostname: "bai-a01", MAC: qemuMAC, Target: "ubuntu-20.04", UserData: ud, MetaData: []byte("instance-id: x\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if id, err = tree.Seal("test"); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Write(filepath.Join(dir, "tree"), id); err != nil {
		t.Fatal(err)
	}
	node = nodes[0]
	node.Entry.Args = replaceAll(node.Entry.Args, pxe.IDPlaceholder, id)
	return filepath.Join(dir, "tree", pxe.Current), node, id
}

func replaceAll(args []string, old, new string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, old, new)
	}
	return out
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", why)
	}
	t.Skip(why)
}

// TestNetbootCmdline boots the tree through every loader chain and checks
// the kernel got the command line exactly as rendered: the ';' of ds=
// intact (GRUB would split an unquoted one), every installer argument
// before '---'. Loaders may only prepend their own BOOT_IMAGE= / initrd=.
func TestNetbootCmdline(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: boots QEMU")
	}
	root, node, id := fixtureTree(t)
	want := node.Entry.Cmdline()
	seed := "ds=nocloud-net;s=http://10.0.2.100/pxe/" + id + "/autoinstall/seed/bai-a01/"
	if !strings.Contains(want, " "+seed+" ") || !strings.HasSuffix(want, " autoinstall "+seed+" ---") {
		t.Fatalf("rendered command line %q lacks %q just before ---", want, seed)
	}
	for _, c := range []struct {
		name string
		nb   qemu.NetBoot
		sb   string // the kernel's word on Secure Boot
	}{
		{"bios-pxelinux", qemu.NetBoot{Bootfile: "pxelinux.0"}, ""},
		{"bios-ipxe", qemu.NetBoot{Bootfile: "ipxe/boot.ipxe"}, ""},
		{"uefi-shim-grub", qemu.NetBoot{Bootfile: "bootx64.efi", Firmware: vm.UEFI}, "Secure boot disabled"},
		// Enforced: shim checks GRUB against Debian's CA, GRUB asks shim to
		// check the kernel, and the kernel reports the firmware's mode.
		{"uefi-secureboot", qemu.NetBoot{Bootfile: "bootx64.efi", Firmware: vm.UEFI, SecureBoot: true}, "Secure boot enabled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.nb.TFTP = root
			got, sb := qemu.NetBootCmdline(t, c.nb)
			if c.sb != "" && !slices.ContainsFunc(sb, func(m string) bool { return strings.HasSuffix(m, "secureboot: "+c.sb) }) {
				t.Errorf("kernel's Secure Boot messages %q, want %q", sb, c.sb)
			}
			extra, ok := strings.CutSuffix(got, want)
			if !ok {
				t.Fatalf("command line\n got %q\nwant %q (after the loader's own arguments)", got, want)
			}
			for _, f := range strings.Fields(extra) {
				if !strings.HasPrefix(f, "BOOT_IMAGE=") && !strings.HasPrefix(f, "initrd=") {
					t.Errorf("loader added %q before the rendered line %q", f, got)
				}
			}
			t.Logf("%s: %q", c.name, got)
		})
	}
}
