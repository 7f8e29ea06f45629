package iso

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/pxe"
)

// CDLoaders are the distribution's boot loaders a kernel ISO boots with,
// by their path on this host. Like pxe.Loaders they are copied, never
// built: only the signed chain boots with Secure Boot on.
type CDLoaders struct {
	Isolinux   string // isolinux.bin (package isolinux)
	MBRCode    string // isohdpfx.bin (isolinux): the isohybrid MBR
	Ldlinux    string // ldlinux.c32 of the same syslinux build (syslinux-common)
	Shim       string // shimx64.efi.signed (shim-signed), the ESP's bootx64.efi
	GRUB       string // gcdx64.efi.signed (grub-efi-amd64-signed): finds the medium by /.disk/info
	MokManager string // mmx64.efi.signed (shim-signed); optional
}

// cdLoaderPaths are where Debian and Ubuntu install them, relative to a
// root (/, or packages unpacked with dpkg-deb -x), as pxe.FindLoaders.
var cdLoaderPaths = CDLoaders{
	Isolinux:   "usr/lib/ISOLINUX/isolinux.bin",
	MBRCode:    "usr/lib/ISOLINUX/isohdpfx.bin",
	Ldlinux:    "usr/lib/syslinux/modules/bios/ldlinux.c32",
	Shim:       "usr/lib/shim/shimx64.efi.signed",
	GRUB:       "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
	MokManager: "usr/lib/shim/mmx64.efi.signed",
}

// FindCDLoaders finds the loaders under root and checks that the EFI ones
// are signed.
func FindCDLoaders(root string) (CDLoaders, error) {
	at := func(p string) string { return filepath.Join(root, p) }
	l := CDLoaders{
		Isolinux: at(cdLoaderPaths.Isolinux), MBRCode: at(cdLoaderPaths.MBRCode), Ldlinux: at(cdLoaderPaths.Ldlinux),
		Shim: at(cdLoaderPaths.Shim), GRUB: at(cdLoaderPaths.GRUB), MokManager: at(cdLoaderPaths.MokManager),
	}
	for _, r := range []struct{ path, pkg string }{
		{l.Isolinux, "isolinux"}, {l.MBRCode, "isolinux"}, {l.Ldlinux, "syslinux-common"},
		{l.Shim, "shim-signed"}, {l.GRUB, "grub-efi-amd64-signed"},
	} {
		if st, err := os.Stat(r.path); err != nil || !st.Mode().IsRegular() {
			return CDLoaders{}, fmt.Errorf("boot loader %s not found (package %s)", r.path, r.pkg)
		}
	}
	if _, err := os.Stat(l.MokManager); err != nil {
		l.MokManager = ""
	}
	for _, p := range []string{l.Shim, l.GRUB, l.MokManager} {
		if p == "" {
			continue
		}
		if err := pxe.CheckSigned(p); err != nil {
			return CDLoaders{}, err
		}
	}
	return l, nil
}

// DeployVolumeID is the volume label of an image-mode ISO: the agent finds
// its medium by it.
const DeployVolumeID = deploy.MediumVolumeID

// Deploy is an image-mode ISO: it boots the deploy environment (bainode
// deploy-env's vmlinuz and initrd.img), whose agent images the disk.
type Deploy struct {
	Loaders CDLoaders
	Kernel  string
	Initrd  string
	// Node is bainoded's node.cpio for one node (its deploy config, with
	// its token), loaded as a second initrd. Without it the agent fetches
	// the config by MAC from the server named in Args.
	Node []byte
	Args []string // kernel arguments
	// Image is a raw.zst the ISO carries, in the root directory as
	// deploy.MediumParts names it: a self-contained ISO, whose Node config
	// reads the image off the medium.
	Image string
}

// WriteDeploy writes d as a hybrid ISO to out (0600 when it holds a node's
// config). The ESP is built here from the signed shim and GRUB, their
// bytes unchanged.
func WriteDeploy(d Deploy, out string, epoch time.Time) (Layout, error) {
	for _, a := range d.Args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"") {
			return Layout{}, fmt.Errorf("kernel argument %q: empty, or holds a space or a quote", a)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".bainode-esp-")
	if err != nil {
		return Layout{}, err
	}
	defer os.RemoveAll(tmp)
	esp := filepath.Join(tmp, "efi.img")
	files := []ESPFile{
		{Path: "EFI/BOOT/BOOTX64.EFI", Src: d.Loaders.Shim},
		{Path: "EFI/BOOT/GRUBX64.EFI", Src: d.Loaders.GRUB},
	}
	if d.Loaders.MokManager != "" {
		files = append(files, ESPFile{Path: "EFI/BOOT/MMX64.EFI", Src: d.Loaders.MokManager})
	}
	if err := WriteESP(files, esp, epoch); err != nil {
		return Layout{}, err
	}
	var extra []File
	if d.Image != "" {
		st, err := os.Stat(d.Image)
		if err != nil {
			return Layout{}, err
		}
		for i, name := range deploy.MediumParts(st.Size()) {
			off := int64(i) * deploy.MaxPart
			extra = append(extra, File{Path: name, Content: Content{Path: d.Image, Offset: off, Size: min(deploy.MaxPart, st.Size()-off)}})
		}
	}
	spec, err := KernelSpec(Boot{
		Isolinux: d.Loaders.Isolinux, Ldlinux: d.Loaders.Ldlinux, MBRCode: d.Loaders.MBRCode, ESP: esp,
		Kernel: d.Kernel, Initrd: d.Initrd, Node: d.Node, Extra: extra,
		Append: strings.Join(d.Args, " "), Label: "bainode deploy",
	}, DeployVolumeID, epoch)
	if err != nil {
		return Layout{}, err
	}
	spec.Secret = d.Node != nil
	return Write(spec, out)
}
