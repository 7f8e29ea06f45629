package pxe

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Autoinstall is install mode "autoinstall": stock Ubuntu's live-server
// ISO, whose casper kernel and initrd download the ISO into RAM and run
// subiquity with the node's autoinstall seed.
const Autoinstall = "autoinstall"

// series are the live installers autoinstall mode knows: the RAM their
// netboot needs (the ISO lives in RAM; field reports: 22.04 crashes at 1-2
// GB, 24.04 fails at 4 GB) and the autoinstall keys of the oldest subiquity
// the series' ISOs ship (24.04+ refuses any other key).
var series = map[string]struct {
	minRAMMiB int
	keys      []string
	// doubleNetwork: subiquity 20.04 GA wants "network: network: ...";
	// later ones read both forms.
	doubleNetwork bool
}{
	"ubuntu-20.04": {4096, []string{"version", "storage", "ssh", "network", "user-data"}, true},
	"ubuntu-22.04": {4096, []string{"version", "storage", "ssh", "network", "user-data"}, false},
	"ubuntu-24.04": {8192, []string{"version", "storage", "ssh", "network", "user-data"}, false},
	"ubuntu-26.04": {8192, []string{"version", "storage", "ssh", "network", "user-data"}, false},
}

// AutoinstallEntry is the boot entry of a node in autoinstall mode. base is
// the tree's URL with a trailing slash (bainoded: SERVER/pxe/ID/); the ISO
// and the node's seed are under it.
func AutoinstallEntry(target, base, hostname string, isoSize int64) (Entry, error) {
	s, ok := series[target]
	if !ok {
		return Entry{}, fmt.Errorf("install mode autoinstall needs an Ubuntu live-server target, not %s", target)
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
		MinRAMMiB: max(s.minRAMMiB, int(isoSize>>20)+2048),
	}, nil
}

// ISOPath is where the tree keeps the live-server ISO casper downloads.
const ISOPath = Autoinstall + "/live-server.iso"

// SeedDir is a node's nocloud-net seed directory in the tree, with the
// trailing slash cloud-init before 23.1 needs.
func SeedDir(hostname string) string { return Autoinstall + "/seed/" + hostname + "/" }

// WrapAutoinstall turns a node's cloud-config into the user-data subiquity
// reads: autoinstall v1 with the node's cloud-config as autoinstall's
// user-data, which cloud-init applies on the installed system's first boot.
//   - no identity: before subiquity 21.12.1 (all 20.04 ISOs) identity's
//     user replaces user-data's users list, losing the operator account;
//   - storage layout "direct": 20.04's default LVM root is 4 GiB;
//   - ssh server installed (subiquity's default is none);
//   - the node's network-config as the installed system's netplan (subiquity
//     turns cloud-init's network off in the target), nested twice on 20.04;
//   - only keys the series' oldest subiquity knows (24.04+ rejects others).
func WrapAutoinstall(target string, userData, networkConfig []byte) ([]byte, error) {
	s, ok := series[target]
	if !ok {
		return nil, fmt.Errorf("install mode autoinstall needs an Ubuntu live-server target, not %s", target)
	}
	ud, err := plain(userData)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(ud, []byte("#cloud-config\n")) {
		return nil, fmt.Errorf("autoinstall: user-data is not a #cloud-config document")
	}
	var orig map[string]any
	if err := yaml.Unmarshal(ud, &orig); err != nil {
		return nil, fmt.Errorf("autoinstall: user-data: %v", err)
	}
	if _, ok := orig["users"]; !ok {
		return nil, fmt.Errorf("autoinstall: user-data has no users; subiquity would then want an identity section")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#cloud-config\n# bainode: subiquity autoinstall v1 for %s. Keys outside autoinstall would\n# configure the live installer; the node's cloud-config is autoinstall.user-data.\n", target)
	b.WriteString("autoinstall:\n  version: 1\n")
	b.WriteString("  storage:\n    layout:\n      name: direct\n")
	b.WriteString("  ssh:\n    install-server: true\n    allow-pw: false\n")
	if nc := bytes.TrimSpace(networkConfig); len(nc) > 0 {
		b.WriteString("  network:\n")
		ind := "    "
		if s.doubleNetwork {
			b.WriteString("    network:\n")
			ind = "      "
		}
		indent(&b, networkConfig, ind)
	}
	b.WriteString("  user-data:\n")
	indent(&b, ud, "    ")

	// Check the nesting by reading it back: the documents must be the same.
	var got struct {
		Autoinstall map[string]any `yaml:"autoinstall"`
	}
	if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
		return nil, fmt.Errorf("autoinstall: wrapped user-data does not parse: %v", err)
	}
	if !reflect.DeepEqual(got.Autoinstall["user-data"], orig) {
		return nil, fmt.Errorf("autoinstall: user-data changed when nested")
	}
	for k := range got.Autoinstall {
		if !contains(s.keys, k) {
			return nil, fmt.Errorf("autoinstall: key %s is unknown to %s's subiquity", k, target)
		}
	}
	return b.Bytes(), nil
}

// indent copies doc with every non-empty line indented; comments and
// blank lines are fine at any depth in YAML.
func indent(b *bytes.Buffer, doc []byte, ind string) {
	for _, line := range strings.SplitAfter(strings.TrimRight(string(doc), "\n")+"\n", "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString(ind)
		}
		b.WriteString(line)
	}
}

func plain(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b, nil
	}
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, 16<<20))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
