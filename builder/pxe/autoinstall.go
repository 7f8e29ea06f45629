package pxe

import (
	"fmt"
	"strings"

	"github.com/lablup/bainode/builder/autoinstall"
)

// Autoinstall is install mode "autoinstall": stock Ubuntu's live-server
// ISO, whose casper kernel and initrd download the ISO into RAM and run
// subiquity with the node's autoinstall seed.
const Autoinstall = "autoinstall"

// AutoinstallEntry is the boot entry of a node in autoinstall mode. base is
// the tree's URL with a trailing slash (bainoded: SERVER/pxe/ID/); the ISO
// and the node's seed are under it.
func AutoinstallEntry(target, base, hostname string, isoSize int64) (Entry, error) {
	s, err := autoinstall.For(target)
	if err != nil {
		return Entry{}, err
	}
	if !strings.HasSuffix(base, "/") || !(strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://")) {
		return Entry{}, fmt.Errorf("tree URL %q: want http(s)://HOST[:PORT]/PATH/", base)
	}
	// ramdisk_size is in KiB; casper puts the ISO on a RAM disk this size.
	ramdisk := (isoSize + 1<<20 - 1) >> 20 << 10
	return Entry{
		Name:   Autoinstall,
		Label:  "Ubuntu live installer (autoinstall)",
		Kernel: Autoinstall + "/linux",
		Initrd: Autoinstall + "/initrd",
		Args: []string{
			"root=/dev/ram0",
			fmt.Sprintf("ramdisk_size=%d", ramdisk),
			"ip=dhcp",
			"url=" + base + ISOPath,
			// Without it cloud-init reads url= as its own and downloads the
			// ISO into RAM a second time (LP #1937319).
			"cloud-config-url=/dev/null",
			"autoinstall",
			"ds=nocloud-net;s=" + base + SeedDir(hostname),
		},
		MinRAMMiB: max(s.MinRAMMiB, int(isoSize>>20)+2048),
	}, nil
}

// ISOPath is where the tree keeps the live-server ISO casper downloads.
const ISOPath = Autoinstall + "/live-server.iso"

// SeedDir is a node's nocloud-net seed directory in the tree, with the
// trailing slash cloud-init before 23.1 needs.
func SeedDir(hostname string) string { return Autoinstall + "/seed/" + hostname + "/" }
