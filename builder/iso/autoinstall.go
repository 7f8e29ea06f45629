package iso

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/payload"
)

// SeedDir is where the NoCloud seed goes on the medium; casper mounts the
// medium at /cdrom.
const SeedDir = "nocloud"

// Seed is the autoinstall seed bainode adds to a live-server ISO.
type Seed struct {
	UserData []byte // #cloud-config with an autoinstall: section
	MetaData []byte
	Secret   bool // the output gets mode 0600
	// Payload is a 'bainode payload' image the ISO carries as PayloadParts;
	// UserData must then hold PayloadCommand among its late-commands.
	Payload string
}

// PayloadDir is where a remastered ISO carries the payload image.
const PayloadDir = "bainode"

// PayloadParts names the files that hold a payload image of size bytes,
// in order: an ISO9660 file holds at most 4 GiB.
func PayloadParts(size int64) []string {
	var out []string
	for i := int64(0); i*deploy.MaxPart < size || i == 0; i++ {
		out = append(out, fmt.Sprintf("%s/payload.%03d", PayloadDir, i))
	}
	return out
}

// PayloadCommand is the late-command (run by subiquity with sh -c, the
// ISO mounted at /cdrom) that joins the parts into payload.InstalledFile
// on the installed system, whose provisioning loop-mounts it.
func PayloadCommand(size int64) string {
	dst := "/target" + payload.InstalledFile
	var src []string
	for _, p := range PayloadParts(size) {
		src = append(src, "/cdrom/"+p)
	}
	return fmt.Sprintf("set -e; mkdir -p %s; cat %s > %s.part; mv %s.part %s",
		path.Dir(dst), strings.Join(src, " "), dst, dst, dst)
}

// KernelArgs are the arguments the installer needs; they go before "---" so
// they stay out of the installed system's command line.
func KernelArgs() []string {
	return []string{"autoinstall", "ds=nocloud;s=/cdrom/" + SeedDir + "/"}
}

// grubQuote single-quotes an argument GRUB would split or cut (a ';' ends
// a command in grub.cfg and the rest is silently dropped).
func grubQuote(a string) string {
	if !strings.ContainsAny(a, ";&|<>$'\" \t{}") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// insertArgs puts args before "---" on every kernel line of a boot loader
// config: lines whose first word is one of verbs. It returns the config and
// how many lines it changed.
func insertArgs(cfg []byte, verbs []string, args []string, quote func(string) string) ([]byte, int) {
	var q []string
	for _, a := range args {
		q = append(q, quote(a))
	}
	add := strings.Join(q, " ")
	lines := strings.SplitAfter(string(cfg), "\n")
	n := 0
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || !containsFold(verbs, f[0]) {
			continue
		}
		body := strings.TrimRight(l, "\r\n")
		eol := l[len(body):]
		if j := strings.Index(body, " ---"); j >= 0 {
			body = strings.TrimRight(body[:j], " \t") + " " + add + " " + strings.TrimLeft(body[j:], " ")
		} else {
			body = strings.TrimRight(body, " \t") + " " + add
		}
		lines[i] = body + eol
		n++
	}
	return []byte(strings.Join(lines, "")), n
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// md5Excluded are the files Ubuntu's md5sum.txt leaves out: the catalog,
// the boot images (patched while writing), the ESP's files, casper's uuid.
func md5Excluded(p string, bootImages map[string]bool) bool {
	lp := strings.ToLower(p)
	switch {
	case p == "md5sum.txt", lp == "boot.catalog", lp == "isolinux/boot.cat",
		bootImages[p], strings.HasPrefix(lp, "efi/boot/"),
		p == "boot/grub/i386-pc/eltorito.img", strings.HasPrefix(p, ".disk/casper-uuid"):
		return true
	}
	return false
}

// regenMD5 rewrites md5sum.txt: lines of unchanged files stay as they
// were, changed files get new sums, new files are appended, excluded files
// are dropped. A source file the old list left out stays out.
func regenMD5(old []byte, changed map[string][]byte, existed, bootImages map[string]bool) []byte {
	var b bytes.Buffer
	listed := map[string]bool{}
	for _, l := range strings.SplitAfter(string(old), "\n") {
		sum, p, ok := strings.Cut(strings.TrimRight(l, "\n"), "  ")
		if !ok {
			if strings.TrimSpace(l) != "" {
				b.WriteString(l)
			}
			continue
		}
		rel := strings.TrimPrefix(p, "./")
		if md5Excluded(rel, bootImages) {
			continue
		}
		listed[rel] = true
		if c, ok := changed[rel]; ok {
			s := md5.Sum(c)
			sum = hex.EncodeToString(s[:])
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, p)
	}
	var added []string
	for p := range changed {
		if !listed[p] && !existed[p] && !md5Excluded(p, bootImages) {
			added = append(added, p)
		}
	}
	sort.Strings(added)
	for _, p := range added {
		s := md5.Sum(changed[p])
		fmt.Fprintf(&b, "%s  ./%s\n", hex.EncodeToString(s[:]), p)
	}
	return b.Bytes()
}

// AutoinstallResult reports what RemasterAutoinstall changed.
type AutoinstallResult struct {
	Source  string // the source's layout, as Medium.Describe says it
	Changed []string
	Notes   []string
	Layout  Layout
}

// RemasterAutoinstall writes out: src with seed under /nocloud, the
// autoinstall arguments on every kernel line of GRUB's and isolinux's
// configs, and a regenerated md5sum.txt. Boot images and the ESP are
// copied byte for byte.
func RemasterAutoinstall(src, out string, seed Seed, epoch time.Time) (AutoinstallResult, error) {
	m, err := Inspect(src)
	if err != nil {
		return AutoinstallResult{}, err
	}
	if len(m.Boot) == 0 {
		return AutoinstallResult{}, fmt.Errorf("%s: not bootable (no El Torito catalog)", src)
	}
	if epoch.IsZero() {
		epoch = m.Modified
	}
	res := AutoinstallResult{Source: m.Describe()}
	changes := map[string][]byte{
		SeedDir + "/user-data": seed.UserData,
		SeedDir + "/meta-data": seed.MetaData,
	}
	kernelLines := 0
	for _, f := range m.Files {
		if f.Dir || f.Link != "" {
			continue
		}
		var verbs []string
		quote := func(s string) string { return s }
		switch {
		case strings.HasPrefix(f.Path, "boot/grub/") && path.Ext(f.Path) == ".cfg":
			verbs, quote = []string{"linux", "linuxefi"}, grubQuote
		case strings.HasPrefix(strings.ToLower(f.Path), "isolinux/") && path.Ext(f.Path) == ".cfg":
			verbs = []string{"append"}
		default:
			continue
		}
		b, err := readFile(f)
		if err != nil {
			return res, err
		}
		nb, n := insertArgs(b, verbs, KernelArgs(), quote)
		if n > 0 {
			changes[f.Path] = nb
			kernelLines += n
		}
	}
	if kernelLines == 0 {
		return res, fmt.Errorf("%s: no kernel line (linux in boot/grub/*.cfg, append in isolinux/*.cfg) to add the autoinstall arguments to", src)
	}
	boot := map[string]bool{}
	for _, e := range m.Boot {
		if e.Path != "" {
			boot[e.Path] = true
		}
	}
	for _, f := range m.Files {
		if f.Path == "md5sum.txt" {
			old, err := readFile(f)
			if err != nil {
				return res, err
			}
			existed := map[string]bool{}
			for _, g := range m.Files {
				existed[g.Path] = true
			}
			changes["md5sum.txt"] = regenMD5(old, changes, existed, boot)
		}
	}
	spec, notes, err := m.Replay(changes, epoch)
	if err != nil {
		return res, err
	}
	spec.Secret = seed.Secret
	res.Notes = append(res.Notes, notes...)
	if seed.Payload != "" {
		files, err := payloadFiles(m, seed.Payload, epoch)
		if err != nil {
			return res, err
		}
		spec.Files = append(spec.Files, files...)
		for _, f := range files[1:] {
			res.Changed = append(res.Changed, f.Path)
		}
	}
	if n, err := espGrubCfg(m); err != nil {
		return res, err
	} else if n > 0 {
		res.Notes = append(res.Notes, "the ESP holds a grub.cfg; bainode keeps the ESP byte-identical and does not add the arguments there (Ubuntu's points at the ISO's /boot/grub/grub.cfg)")
	}
	if !hasDiskInfo(m) {
		res.Notes = append(res.Notes, "no /.disk/info on the source: Ubuntu's signed UEFI GRUB finds the medium by it")
	}
	res.Layout, err = Write(spec, out)
	if err != nil {
		return res, err
	}
	for p := range changes {
		res.Changed = append(res.Changed, p)
	}
	sort.Strings(res.Changed)
	return res, nil
}

// payloadFiles are the payload's parts (big: read from the host file when
// the ISO is written, never held in memory) under a new PayloadDir.
func payloadFiles(m *Medium, src string, epoch time.Time) ([]File, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	for _, f := range m.Files {
		if f.Path == PayloadDir || strings.HasPrefix(f.Path, PayloadDir+"/") {
			return nil, fmt.Errorf("%s: already has /%s; bainode puts the payload there", m.Path, PayloadDir)
		}
	}
	files := []File{{Path: PayloadDir, Dir: true, Mode: 0o555, ModTime: epoch}}
	for i, p := range PayloadParts(st.Size()) {
		off := int64(i) * deploy.MaxPart
		files = append(files, File{Path: p, Content: Content{Path: src, Offset: off, Size: min(deploy.MaxPart, st.Size()-off)}, Mode: 0o444, ModTime: epoch})
	}
	return files, nil
}

// espGrubCfg counts FAT directory entries named GRUB.CFG in the EFI boot
// images (a scan for the 8.3 name: enough to tell the user, no FAT parser).
func espGrubCfg(m *Medium) (int, error) {
	n := 0
	for _, e := range m.Boot {
		if e.Platform != EFI || e.Size > 256<<20 {
			continue
		}
		b, err := readRange(m.Path, int64(e.LBA)*Block, e.Size)
		if err != nil {
			return 0, err
		}
		for off := 0; off < len(b); {
			i := bytes.Index(b[off:], []byte("GRUB    CFG"))
			if i < 0 {
				break
			}
			if (off+i)%32 == 0 {
				n++
			}
			off += i + 1
		}
	}
	return n, nil
}

func hasDiskInfo(m *Medium) bool {
	for _, f := range m.Files {
		if f.Path == ".disk/info" {
			return true
		}
	}
	return false
}

// readFile reads a (small) file of a medium.
func readFile(f File) ([]byte, error) {
	c := f.Content
	if c.Path == "" {
		return c.Data, nil
	}
	if c.Size > 16<<20 {
		return nil, errors.New(f.Path + ": too big for a config file")
	}
	src, err := os.Open(c.Path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	b := make([]byte, c.Size)
	if _, err := src.ReadAt(b, c.Offset); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return b, nil
}
