package pxe

import (
	"debug/pe"
	"fmt"
	"os"
	"path/filepath"
)

// Loaders are the distribution's boot loader binaries, by their path on
// this host. They are copied, never built: only the signed chain (shim,
// then GRUB signed by the distribution) boots with Secure Boot on.
type Loaders struct {
	PXELinux string // pxelinux.0 (package pxelinux)
	LDLinux  string // ldlinux.c32 of the same syslinux build (syslinux-common)
	Shim     string // shimx64.efi.signed (shim-signed), served as bootx64.efi
	GRUB     string // grubnetx64.efi.signed (grub-efi-amd64-signed), served as grubx64.efi
}

// loaderPaths are where Debian and Ubuntu packages install them, relative
// to a root: / for this host, or a directory the packages were unpacked
// into (dpkg-deb -x) from a fetch cache or a payload.
var loaderPaths = Loaders{
	PXELinux: "usr/lib/PXELINUX/pxelinux.0",
	LDLinux:  "usr/lib/syslinux/modules/bios/ldlinux.c32",
	Shim:     "usr/lib/shim/shimx64.efi.signed",
	GRUB:     "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
}

// FindLoaders finds the loaders under root and checks the EFI ones carry
// an Authenticode signature.
func FindLoaders(root string) (Loaders, error) {
	l := Loaders{
		PXELinux: filepath.Join(root, loaderPaths.PXELinux),
		LDLinux:  filepath.Join(root, loaderPaths.LDLinux),
		Shim:     filepath.Join(root, loaderPaths.Shim),
		GRUB:     filepath.Join(root, loaderPaths.GRUB),
	}
	pkgs := map[string]string{l.PXELinux: "pxelinux", l.LDLinux: "syslinux-common", l.Shim: "shim-signed", l.GRUB: "grub-efi-amd64-signed"}
	for _, p := range []string{l.PXELinux, l.LDLinux, l.Shim, l.GRUB} {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return Loaders{}, fmt.Errorf("boot loader %s not found (package %s)", p, pkgs[p])
		}
	}
	for _, p := range []string{l.Shim, l.GRUB} {
		if err := CheckSigned(p); err != nil {
			return Loaders{}, err
		}
	}
	return l, nil
}

// CheckSigned refuses an EFI binary without an Authenticode signature
// (PE security directory); firmware with Secure Boot on would refuse it too.
func CheckSigned(path string) error {
	f, err := pe.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not an EFI binary: %v", path, err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || len(oh.DataDirectory) <= pe.IMAGE_DIRECTORY_ENTRY_SECURITY {
		return fmt.Errorf("%s: not a 64-bit EFI binary", path)
	}
	if d := oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]; d.Size == 0 {
		return fmt.Errorf("%s: unsigned EFI binary; use the distribution's signed one", path)
	}
	return nil
}

// AddLoaders puts the loaders at the paths of Ubuntu's netboot tarballs.
func (t *Tree) AddLoaders(l Loaders) error {
	for path, src := range map[string]string{
		"pxelinux.0": l.PXELinux, "ldlinux.c32": l.LDLinux,
		"bootx64.efi": l.Shim, "grubx64.efi": l.GRUB,
	} {
		if err := t.Add(path, File{Src: src}); err != nil {
			return err
		}
	}
	return nil
}
