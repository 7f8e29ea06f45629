// Package pxe writes bainode's netboot tree: the boot loaders of the
// distribution (never built here), per-node pxelinux, GRUB and iPXE
// configs, and the kernel and initrd of each install mode, in the layout of
// Ubuntu's netboot tarballs. A boot entry is data (Entry): an install mode
// is a value, and every loader renders it the same way.
package pxe

import (
	"fmt"
	"strings"
)

// Entry is one way to boot a node.
type Entry struct {
	Name   string // the mode and its directory in the tree, e.g. "autoinstall"
	Label  string // menu text
	Kernel string // path in the tree, e.g. "autoinstall/linux"
	Initrd string // path in the tree
	// Args go before "---": the installer's own, which must not leak into
	// the installed system's boot loader.
	Args []string
	// After go after "---": copied to the installed system's command line.
	After []string
	// NodeInitrd is an absolute http(s) URL of a second, per-node initrd
	// that loaders able to fetch over HTTP (iPXE) add; the others rely on
	// Args to let the kernel's userland fetch it.
	NodeInitrd string
	// MinRAMMiB makes the iPXE script warn before the download when the
	// node has less RAM (0: no check).
	MinRAMMiB int
}

// maxCmdline is x86's COMMAND_LINE_SIZE.
const maxCmdline = 2048

// Cmdline is the kernel command line every loader passes, without the
// loader's own additions (BOOT_IMAGE=, initrd=).
func (e Entry) Cmdline() string {
	parts := append(append(append([]string(nil), e.Args...), "---"), e.After...)
	return strings.Join(parts, " ")
}

// Validate refuses what a loader would mangle: words it splits, expands or
// quotes differently. ';' is fine: GRUB gets it quoted.
func (e Entry) Validate() error {
	if !safePath(e.Name) || strings.Contains(e.Name, "/") {
		return fmt.Errorf("entry name %q: want letters, digits, '-', '_' or '.'", e.Name)
	}
	for _, p := range []string{e.Kernel, e.Initrd} {
		if !safePath(p) {
			return fmt.Errorf("entry %s: tree path %q: want a relative path of letters, digits, '-', '_', '.' and '/'", e.Name, p)
		}
	}
	if u := e.NodeInitrd; u != "" {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("entry %s: node initrd %q: want an http(s) URL", e.Name, u)
		}
		if err := checkWord(e.Name, u); err != nil {
			return err
		}
	}
	for _, a := range append(append([]string(nil), e.Args...), e.After...) {
		if a == "" || a == "---" {
			return fmt.Errorf("entry %s: kernel argument %q is empty or a separator", e.Name, a)
		}
		if err := checkWord(e.Name, a); err != nil {
			return err
		}
	}
	if n := len(e.Cmdline()); n >= maxCmdline {
		return fmt.Errorf("entry %s: kernel command line is %d bytes, over the kernel's %d", e.Name, n, maxCmdline-1)
	}
	return nil
}

// checkWord refuses what a loader would split, quote or expand.
func checkWord(entry, a string) error {
	for _, c := range a {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`'"\$`+"`{}", c) {
			return fmt.Errorf("entry %s: kernel argument %q: %q would be split, quoted or expanded by a boot loader", entry, a, c)
		}
	}
	return nil
}

func safePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	for _, c := range p {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_./", c)) {
			return false
		}
	}
	return true
}

// grubWord quotes a validated argument for grub.cfg: GRUB's shell splits
// commands at ';' and treats '&|<>#' specially; inside single quotes they
// are plain, and GRUB passes the word to the kernel without the quotes.
func grubWord(a string) string {
	if strings.ContainsAny(a, ";&|<>#") {
		return "'" + a + "'"
	}
	return a
}
