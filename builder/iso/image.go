package iso

import (
	"fmt"
	"strings"
	"time"
)

// Boot is what a kernel+initrd ISO boots with (the shape of --mode image:
// the deploy environment, plus the role's raw.zst and the node's seed as
// Extra files). The binaries come from Debian's packages: isolinux
// (isolinux.bin, isohdpfx.bin), syslinux-common (ldlinux.c32), and an ESP
// image holding the signed shim as EFI/boot/bootx64.efi and the signed CD
// GRUB (gcdx64) as EFI/boot/grubx64.efi, which finds the medium by
// /.disk/info and reads /boot/grub/grub.cfg from it.
type Boot struct {
	Isolinux string // isolinux.bin
	Ldlinux  string // ldlinux.c32
	MBRCode  string // isohdpfx.bin
	ESP      string // FAT image
	Kernel   string
	Initrd   string
	// Node is a second initrd (/boot/node.cpio, mode 0400): a node's
	// config. It holds a secret; the caller sets Spec.Secret.
	Node   []byte
	Append string // kernel command line
	Label  string // menu entry and /.disk/info text
	Extra  []File // more files: the image, the seed
}

// KernelSpec is the Spec of a hybrid ISO that boots b.Kernel with b.Initrd
// under BIOS (isolinux) and UEFI (shim, GRUB), from CD and from a disk.
// It is the 20.04 layout: the ESP is a file in the tree and an MBR
// partition.
func KernelSpec(b Boot, volumeID string, epoch time.Time) (Spec, error) {
	for name, p := range map[string]string{"Isolinux": b.Isolinux, "Ldlinux": b.Ldlinux, "MBRCode": b.MBRCode, "ESP": b.ESP, "Kernel": b.Kernel, "Initrd": b.Initrd} {
		if p == "" {
			return Spec{}, fmt.Errorf("boot: %s is required", name)
		}
	}
	if strings.ContainsAny(b.Append, "\n'") {
		return Spec{}, fmt.Errorf("boot: kernel command line %q holds a newline or a single quote", b.Append)
	}
	if b.Node != nil && len(b.Node) == 0 {
		return Spec{}, fmt.Errorf("boot: the node's initrd is empty (isolinux fails to load an empty file)")
	}
	code, err := readRange(b.MBRCode, 0, 432)
	if err != nil {
		return Spec{}, fmt.Errorf("boot: MBR code: %w", err)
	}
	label := b.Label
	if label == "" {
		label = "bainode"
	}
	var grubArgs []string
	for _, a := range strings.Fields(b.Append) {
		grubArgs = append(grubArgs, grubQuote(a))
	}
	initrds := []string{"/boot/initrd"}
	if b.Node != nil {
		initrds = append(initrds, "/boot/node.cpio")
	}
	isolinuxCfg := "serial 0 115200\ndefault bainode\nprompt 0\ntimeout 1\nlabel bainode\n  kernel /boot/vmlinuz\n  append initrd=" + strings.Join(initrds, ",") + " " + b.Append + "\n"
	grubCfg := "set timeout=1\nserial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n" +
		"menuentry '" + label + "' {\n\tlinux /boot/vmlinuz " + strings.Join(grubArgs, " ") + "\n\tinitrd " + strings.Join(initrds, " ") + "\n}\n"
	whole := func(p string) Content { return Content{Path: p, Size: -1} }
	files := []File{
		{Path: ".disk/info", Content: Content{Data: []byte(label)}},
		{Path: "boot/vmlinuz", Content: whole(b.Kernel)},
		{Path: "boot/initrd", Content: whole(b.Initrd)},
		{Path: "boot/grub/grub.cfg", Content: Content{Data: []byte(grubCfg)}},
		{Path: "boot/grub/efi.img", Content: whole(b.ESP)},
		{Path: "isolinux/isolinux.bin", Content: whole(b.Isolinux)},
		{Path: "isolinux/ldlinux.c32", Content: whole(b.Ldlinux)},
		{Path: "isolinux/isolinux.cfg", Content: Content{Data: []byte(isolinuxCfg)}},
	}
	if b.Node != nil {
		files = append(files, File{Path: "boot/node.cpio", Content: Content{Data: b.Node}, Mode: 0o400})
	}
	files = append(files, b.Extra...)
	espSize, err := (Content{Path: b.ESP, Size: -1}).size()
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		VolumeID: volumeID,
		Files:    files,
		Catalog:  "isolinux/boot.cat",
		Boot: []BootEntry{
			{Platform: BIOS, Path: "isolinux/isolinux.bin", LoadSize: 4, InfoTable: true},
			{Platform: EFI, Path: "boot/grub/efi.img", LoadSize: efiLoadSize(espSize)},
		},
		System: SystemArea{Scheme: MBR, Code: code, Patch: PatchIsolinux, Partitions: []Partition{
			{Extent: ExtentWhole, Bootable: true, MBRType: 0x00},
			{Extent: ExtentBootImage, BootEntry: 1, MBRType: 0xef},
		}},
		Epoch: epoch,
	}, nil
}

func readRange(p string, off, n int64) ([]byte, error) {
	return readFile(File{Path: p, Content: Content{Path: p, Offset: off, Size: n}})
}

// efiLoadSize is the image's 512-byte sectors, or 0 (the whole image, as
// xorriso writes) when the count does not fit the catalog's 16 bits.
func efiLoadSize(n int64) uint16 {
	if s := (n + 511) / 512; s <= 0xffff {
		return uint16(s)
	}
	return 0
}
